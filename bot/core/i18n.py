"""Message catalogues (English, Korean): stable keys → format strings, one place for both bots.

``language(code)`` maps a platform locale (Telegram ``language_code`` such as ``"ko"`` or
``"en-US"``, Discord ``"ko"``) to a catalogue; anything unknown falls back to English. ``text``
formats a message; a key missing from a catalogue falls back to English too (tests check that
both catalogues have the same keys and placeholders).
"""

from __future__ import annotations

DEFAULT = "en"

EN: dict[str, str] = {
    # Commands and help.
    "start": (
        "Hi! I protect your photos from deepfake tools.\n\n"
        "Send me a photo with a face. I send it back looking nearly the same to people, but the "
        "face detectors that deepfake tools start with no longer find the face, also after "
        "the photo is re-compressed or resized. Honestly: at the default strength a fine "
        "colour texture shows on the face up close; /strength says what each level "
        "costs and gives.\n\n"
        "Tip: send the photo as a file (📎 → File) to keep full quality; photos sent the "
        "normal way are compressed by Telegram first.\n\n"
        "/strength — how strong the protection is (1..5)\n"
        "/filter — filters (looks), applied before the protection\n"
        "/clip — deepfake test: a face swap of your photo, before and after protection\n"
        "/privacy — what I keep\n/forget — delete everything about you"
    ),
    "help": (
        "Send a photo (or an image file up to {max_mb} MB). You get back:\n"
        "• the protected image as a lossless PNG file: save and share this one,\n"
        "• a before/after preview,\n"
        "• a report: which face detectors still find a face, and the image quality (SSIM, "
        "1.0 = identical).\n\n"
        "Buttons under the result redo the same photo weaker or stronger, or in another look "
        "(🎨 Filters).\n"
        "Sending the photo as a file keeps full quality.\n\n"
        "/strength N — default strength 1 (subtle) .. 5 (strongest), now {strength}\n"
        "/filter — your photo in every look · /filter NAME — default look · /filter off\n"
        "/clip — deepfake test of your last photo (also 🎭 under a result)\n"
        "/privacy — what I keep · /forget — delete everything about you"
    ),
    "privacy": (
        "What I keep:\n"
        "• your last photo, in memory (Redis) only, for the weaker/stronger and filter buttons: "
        "deleted "
        "after {photo_minutes} minutes;\n"
        "• your strength and filter settings: deleted {settings_days} days after you last use me;\n"
        "• a counter for the hourly limit: deleted after one hour.\n"
        "Photos are never written to disk, and your user id is stored only as a keyed hash. "
        "Results are deleted from the queue minutes after delivery.\n\n"
        "/forget deletes all of it now."
    ),
    "forgot": "Done: everything I kept about you is deleted.",
    "cmd_start": "What this bot does",
    "cmd_help": "How to use it",
    "cmd_strength": "Default protection strength (1..5)",
    "cmd_privacy": "What is kept, and for how long",
    "cmd_forget": "Delete everything about you now",
    "cmd_filter": "Filters: see your photo in every look, pick one",
    "cmd_clip": "Deepfake test: a face swap of your last photo, before and after protection",
    "strength_current": (
        "Your strength is {level}. What each level does (measured on 40 real photos, after "
        "the photo is re-compressed):\n"
        "1 — almost invisible · light: detectors still find 6 to 8 faces in 10\n"
        "2 — faint colour noise on the face · medium: most detectors find 1 face in 3 or "
        "fewer, the best one 1 in 2\n"
        "3 (default) — a fine colour texture on the face, visible up close · strong: most "
        "detectors find about 1 face in 10 or fewer, the best one 1 in 3\n"
        "4 — a stronger texture · most detectors find 1 face in 10 or fewer, the best one 1 "
        "in 4\n"
        "5 — a deliberate protective texture, plainly visible · strongest: every detector we "
        "test finds about 1 face in 10 or fewer\n"
        "Choose:"
    ),
    "strength_set": "Strength set to {level}. Send a photo.",
    "strength_invalid": (
        "Strength must be a whole number from 1 (subtle) to 5 (strongest), for example "
        "/strength 3."
    ),
    "send_photo": "Send me a photo (or an image file) to protect it.",
    # Filters (issue 4).
    "filter_no_photo": (
        "Send me a photo first: then /filter shows it in every look, and the look you pick "
        "comes back protected."
    ),
    "filters_pick": (
        "🎨 Pick a look: your photo comes back with it, protected at strength {strength}.\n"
        "Look for new photos: {current}. /filter NAME makes one the default, /filter off "
        "turns it off."
    ),
    "filter_set": (
        "Filter set to {label}: every new photo gets this look, then the protection. "
        "/filter off turns it off."
    ),
    "filter_off": "Filter off: photos are protected as they are.",
    "filter_unknown": (
        "I don't know the filter \"{name}\". Filters: {names}.\n"
        "For example /filter sepia, or /filter off. /filter alone shows them on your photo."
    ),
    "unknown_command": "I don't know that command. /help lists what I can do.",
    # Input checks before anything is queued.
    "not_an_image_document": (
        "This file is not an image. Send a photo, or an image file (JPEG, PNG, WebP, GIF, BMP, "
        "TIFF)."
    ),
    "too_big": (
        "This file is larger than {max_mb} MB, the most a bot can download from Telegram. "
        "Send a smaller image, or the photo the normal way."
    ),
    "send_again": "That photo has expired from my memory (privacy). Please send it again.",
    # Limits.
    "one_at_a_time": "I'm still working on your previous photo: one at a time, please.",
    "busy": "I'm very busy right now. Please try again in a minute.",
    "quota": "You've reached the limit of {limit} photos per hour. Try again in {minutes} min.",
    # Status message (edited as the job moves).
    "status_received": "📥 Got it…",
    "status_queued": "⏳ In the queue (place {position})…",
    "status_waiting": "⏳ In the queue…",
    "status_protecting": "🛡 Protecting… {percent}%",
    "status_verifying": "🔍 Checking with face detectors… {percent}%",
    "status_done": "✅ Done in {seconds} s",
    "status_failed": "❌ Failed",
    # Result.
    "preview_caption": "Before | after (preview only: keep the PNG file)",
    "button_weaker": "◀ Weaker ({level})",
    "button_stronger": "Stronger ({level}) ▶",
    "button_filters": "🎨 Filters",
    # Deepfake test (issue 5).
    "button_clip": "🎭 Deepfake test",
    "clip_no_photo": "Send me a photo first: /clip then shows a deepfake made from it and from "
                     "its protected version.",
    "clip_protecting": "🎭 Protecting your photo for the deepfake test… {percent}%",
    "clip_swapping": "🎭 Making the deepfakes… {percent}%",
    "clip_rendering": "🎭 Rendering the video… {percent}%",
    "clip_caption": (
        "🎭 Deepfake test: the same face-swap tool fed your original photo (left) and your "
        "photo protected at strength {strength} (right).\nOriginal: {original}.\n"
        "Protected: {protected}."
    ),
    "clip_same_person": "deepfake made, it looks like you (identity distance {distance}; "
                        "below 0.60 = same person)",
    "clip_other_person": "a face was swapped in, but it no longer looks like you "
                         "(identity distance {distance})",
    "clip_no_face": "no face found, so the deepfake failed",
    "clip_unscored": "a face was swapped in (no face on the original to compare with)",
    "result_too_big": (
        "The protected PNG is larger than 50 MB, more than a bot may send. Please send a smaller "
        "photo."
    ),
    "cap_no_face": "No face found on the original, so there was nothing to hide.",
    "cap_hidden_all": (
        "Faces hidden from {hidden}/{total} {group}, also after JPEG re-save and downscale."
    ),
    "cap_hidden_some": (
        "Faces hidden from {hidden}/{total} {group}; after JPEG re-save {jpeg}/{total}, "
        "after downscale {half}/{total}."
    ),
    "group_evaluator": "independent detectors",
    "group_surrogate": "targeted detectors",
    "cap_still_found": "⚠ Still found by: {names}. Try a stronger level.",
    "cap_quality": "SSIM {ssim} · strength {strength} · {seconds} s",
    "cap_ssim_face": "{ssim} (on the face {face})",
    "cap_filter": "🎨 Filter: {name} (applied before the protection)",
    # Discord (issue 6).
    "discord_help": (
        "Protect a photo: /protect with the image attached (in a direct message with me, just "
        "send the image). You get back:\n"
        "• the protected image as a lossless PNG file: save and share this one,\n"
        "• a report: which face detectors still find a face, and the image quality (SSIM, "
        "1.0 = identical), with a before/after preview.\n\n"
        "Buttons under the result (only you can press them) redo the same photo weaker or "
        "stronger, show it in every look (🎨 Filters) or make a deepfake test (🎭).\n"
        "Images up to {max_mb} MB. A result larger than Discord lets me upload comes back "
        "downscaled, still lossless, and I say so.\n\n"
        "/strength — default strength 1 (subtle) .. 5 (strongest), now {strength}\n"
        "/filter — your last photo in every look · /filter name — default look\n"
        "/clip — deepfake test of your last photo\n"
        "/privacy — what I keep · /forget — delete everything about you"
    ),
    "discord_not_yours": (
        "These buttons belong to the person who sent that photo. Protect your own with /protect."
    ),
    "discord_resized": (
        "⚠ The lossless PNG is {size_mb} MB, more than the {limit_mb} MB Discord lets me upload "
        "here. This is the same protected image downscaled to {width}×{height}, still a lossless "
        "PNG (never a lossy JPEG: re-compression is what the protection has to survive). For "
        "full size, send a photo with fewer pixels."
    ),
    "discord_result_too_big": (
        "The result is larger than the {limit_mb} MB Discord lets me upload here, even "
        "downscaled. Please send a smaller photo."
    ),
    "discord_too_big": "This file is larger than {max_mb} MB. Please send a smaller image.",
    "discord_report_title": "🛡 Protection report",
    "cmd_protect": "Protect a photo from deepfake tools",
    "opt_image": "The photo to protect (an image file)",
    "opt_strength": "1 (subtle) .. 5 (strongest); default: your /strength",
    "opt_level": "1 (subtle) .. 5 (strongest); leave empty to see yours",
    "opt_filter": "Default look for new photos; leave empty to see your last photo in every look",
    # Decode notes.
    "note_animated_first_frame": "Animated image: only the first frame was protected.",
    "note_multipage_first_page": "Multi-page image: only the first page was protected.",
    "note_exif_rotated": "The photo was turned upright using its orientation tag.",
    "note_cmyk_converted": "CMYK colours were converted to RGB.",
    "note_16bit_reduced": "16-bit colour was reduced to 8-bit.",
    "note_grayscale_expanded": "Grayscale image, returned as RGB.",
    "note_palette_converted": "Palette image, returned as full colour.",
    "note_alpha_flattened": "Transparency was flattened onto white.",
    "note_icc_converted": "The colour profile was applied (the result is plain sRGB).",
    "note_downscaled": "Very large photo: it was scaled down before protection.",
    # Job errors (ProtectResult.error codes).
    "error_empty": "The file is empty (0 bytes). Please send the photo again.",
    "error_not_an_image": "This file is not an image I can read. Send a JPEG, PNG or WebP photo.",
    "error_unsupported_format": (
        "I can't read this image format (e.g. HEIC, SVG, PDF or video). Send it as JPEG or PNG "
        "(on iPhone: send it the normal way, not as a file)."
    ),
    "error_truncated": "The image is incomplete (it ends early). Please send it again.",
    "error_corrupt": "The image data is damaged and can't be read. Please try another file.",
    "error_too_many_pixels": (
        "The image is too large (more than 50 megapixels). Please send a smaller version."
    ),
    "error_too_small": (
        "The image is too small to protect (at least 16×16 pixels). Please send a bigger photo."
    ),
    "error_unknown_filter": (
        "I don't know that filter (any more). Pick one with /filter, or use /filter off."
    ),
    "error_internal": "Something went wrong while protecting this photo. Please try again later.",
    "error_timeout": "This took too long and was stopped. Please try again later.",
    "error_generic": "Sorry, something went wrong on my side. Please try again.",
}

KO: dict[str, str] = {
    "start": (
        "안녕하세요! 사진을 딥페이크 도구로부터 보호해 드립니다.\n\n"
        "얼굴이 있는 사진을 보내 주세요. 사람 눈에는 거의 똑같아 보이지만, 딥페이크 도구가 "
        "처음에 사용하는 얼굴 검출기가 더 이상 얼굴을 찾지 못하는 사진으로 돌려드립니다. "
        "사진이 다시 압축되거나 크기가 바뀌어도 마찬가지입니다. 솔직히 말씀드리면, 기본 "
        "강도에서는 가까이 보면 얼굴에 미세한 색 무늬가 보입니다. 각 강도의 차이는 "
        "/strength 에서 확인하세요.\n\n"
        "팁: 사진을 파일로 보내면(📎 → 파일) 원본 화질이 유지됩니다. 일반 사진으로 보내면 "
        "텔레그램이 먼저 압축합니다.\n\n"
        "/strength — 보호 강도 (1..5)\n/filter — 필터(스타일), 보호 전에 적용\n"
        "/clip — 딥페이크 테스트: 보호 전과 후의 얼굴 합성\n"
        "/privacy — 보관하는 정보\n/forget — 내 정보 모두 삭제"
    ),
    "help": (
        "사진(또는 {max_mb}MB 이하의 이미지 파일)을 보내 주세요. 다음을 보내 드립니다:\n"
        "• 보호된 이미지(무손실 PNG 파일): 이 파일을 저장하고 공유하세요.\n"
        "• 보호 전/후 미리보기\n"
        "• 보고서: 아직 얼굴을 찾는 검출기와 화질(SSIM, 1.0 = 동일)\n\n"
        "결과 아래 버튼으로 같은 사진을 더 약하게 또는 더 강하게, 또는 다른 스타일(🎨 필터)로 "
        "다시 보호할 수 있습니다.\n"
        "사진을 파일로 보내면 원본 화질이 유지됩니다.\n\n"
        "/strength N — 기본 강도 1(약함) .. 5(가장 강함), 현재 {strength}\n"
        "/filter — 모든 스타일로 사진 보기 · /filter 이름 — 기본 스타일 · /filter off\n"
        "/clip — 마지막 사진의 딥페이크 테스트 (결과 아래 🎭 버튼도 있음)\n"
        "/privacy — 보관하는 정보 · /forget — 내 정보 모두 삭제"
    ),
    "privacy": (
        "보관하는 정보:\n"
        "• 마지막 사진: 약하게/강하게 버튼과 필터를 위해 메모리(Redis)에만 보관하며 "
        "{photo_minutes}분 후 삭제됩니다.\n"
        "• 강도와 필터 설정: 마지막 사용 후 {settings_days}일이 지나면 삭제됩니다.\n"
        "• 시간당 한도 카운터: 1시간 후 삭제됩니다.\n"
        "사진은 디스크에 저장되지 않으며, 사용자 ID는 키가 있는 해시로만 저장됩니다. "
        "결과는 전달 후 몇 분 안에 대기열에서 삭제됩니다.\n\n"
        "/forget 으로 지금 모두 삭제할 수 있습니다."
    ),
    "forgot": "완료: 보관하던 내 정보를 모두 삭제했습니다.",
    "cmd_start": "이 봇이 하는 일",
    "cmd_help": "사용 방법",
    "cmd_strength": "기본 보호 강도 (1..5)",
    "cmd_privacy": "보관하는 정보와 기간",
    "cmd_forget": "내 정보 지금 모두 삭제",
    "cmd_filter": "필터: 모든 스타일로 사진 보고 고르기",
    "cmd_clip": "딥페이크 테스트: 마지막 사진의 얼굴 합성, 보호 전과 후",
    "strength_current": (
        "현재 강도는 {level}입니다. 강도별 효과 (실제 사진 40장, 사진이 다시 압축된 뒤 측정):\n"
        "1 — 거의 보이지 않음 · 약한 보호: 검출기가 얼굴 10개 중 6~8개를 여전히 찾음\n"
        "2 — 얼굴에 옅은 색 노이즈 · 중간: 대부분의 검출기가 얼굴 3개 중 1개 이하를 찾음, "
        "가장 강한 검출기는 2개 중 1개\n"
        "3 (기본값) — 가까이 보면 얼굴에 미세한 색 무늬가 보임 · 강한 보호: 대부분의 검출기가 "
        "얼굴 10개 중 약 1개 이하를 찾음, 가장 강한 검출기는 3개 중 1개\n"
        "4 — 더 강한 무늬 · 대부분의 검출기가 10개 중 1개 이하, 가장 강한 검출기는 4개 중 1개\n"
        "5 — 눈에 띄는 보호 무늬 · 가장 강한 보호: 시험한 모든 검출기가 얼굴 10개 중 약 1개 "
        "이하를 찾음\n"
        "선택하세요:"
    ),
    "strength_set": "강도를 {level}(으)로 설정했습니다. 사진을 보내 주세요.",
    "strength_invalid": "강도는 1(약함)부터 5(가장 강함)까지의 정수여야 합니다. 예: /strength 3",
    "send_photo": "보호할 사진(또는 이미지 파일)을 보내 주세요.",
    "filter_no_photo": (
        "먼저 사진을 보내 주세요. 그러면 /filter 로 모든 스타일을 적용한 사진을 보여 드리고, "
        "고른 스타일로 보호한 사진을 보내 드립니다."
    ),
    "filters_pick": (
        "🎨 스타일을 고르세요: 그 스타일로 강도 {strength}로 보호한 사진을 보내 드립니다.\n"
        "새 사진의 스타일: {current}. /filter 이름 으로 기본 스타일을 정하고, /filter off 로 "
        "끌 수 있습니다."
    ),
    "filter_set": (
        "필터를 {label}(으)로 설정했습니다: 새 사진마다 이 스타일을 적용한 뒤 보호합니다. "
        "/filter off 로 끌 수 있습니다."
    ),
    "filter_off": "필터를 껐습니다: 사진을 그대로 보호합니다.",
    "filter_unknown": (
        "\"{name}\" 필터는 없습니다. 필터: {names}.\n"
        "예: /filter sepia 또는 /filter off. /filter 만 보내면 내 사진으로 모든 필터를 보여 "
        "드립니다."
    ),
    "unknown_command": "알 수 없는 명령입니다. /help 에서 사용할 수 있는 명령을 확인하세요.",
    "not_an_image_document": (
        "이미지 파일이 아닙니다. 사진이나 이미지 파일(JPEG, PNG, WebP, GIF, BMP, TIFF)을 보내 "
        "주세요."
    ),
    "too_big": (
        "파일이 {max_mb}MB보다 큽니다. 봇은 텔레그램에서 이보다 큰 파일을 받을 수 없습니다. "
        "더 작은 이미지를 보내거나 일반 사진으로 보내 주세요."
    ),
    "send_again": "개인정보 보호를 위해 그 사진은 이미 삭제되었습니다. 사진을 다시 보내 주세요.",
    "one_at_a_time": "이전 사진을 아직 처리하고 있습니다. 한 번에 한 장씩 보내 주세요.",
    "busy": "지금은 요청이 많습니다. 1분 후에 다시 시도해 주세요.",
    "quota": "시간당 {limit}장 한도에 도달했습니다. {minutes}분 후에 다시 시도해 주세요.",
    "status_received": "📥 받았습니다…",
    "status_queued": "⏳ 대기 중 ({position}번째)…",
    "status_waiting": "⏳ 대기 중…",
    "status_protecting": "🛡 보호 중… {percent}%",
    "status_verifying": "🔍 얼굴 검출기로 확인 중… {percent}%",
    "status_done": "✅ {seconds}초 만에 완료",
    "status_failed": "❌ 실패",
    "preview_caption": "보호 전 | 후 (미리보기입니다: PNG 파일을 보관하세요)",
    "button_weaker": "◀ 더 약하게 ({level})",
    "button_stronger": "더 강하게 ({level}) ▶",
    "button_filters": "🎨 필터",
    # 딥페이크 테스트 (issue 5).
    "button_clip": "🎭 딥페이크 테스트",
    "clip_no_photo": "먼저 사진을 보내 주세요. 그러면 /clip 으로 원본과 보호된 사진으로 만든 "
                     "딥페이크를 보여 드립니다.",
    "clip_protecting": "🎭 딥페이크 테스트용으로 사진 보호 중… {percent}%",
    "clip_swapping": "🎭 딥페이크 만드는 중… {percent}%",
    "clip_rendering": "🎭 영상 만드는 중… {percent}%",
    "clip_caption": (
        "🎭 딥페이크 테스트: 같은 얼굴 합성 도구에 원본 사진(왼쪽)과 강도 {strength}로 보호된 "
        "사진(오른쪽)을 넣었습니다.\n원본: {original}.\n보호된 사진: {protected}."
    ),
    "clip_same_person": "딥페이크 성공, 본인처럼 보임 "
                        "(신원 거리 {distance}, 0.60 미만 = 같은 사람)",
    "clip_other_person": "얼굴은 합성됐지만 더 이상 본인처럼 보이지 않음 (신원 거리 {distance})",
    "clip_no_face": "얼굴을 찾지 못해 딥페이크 실패",
    "clip_unscored": "얼굴이 합성됨 (원본에 비교할 얼굴 없음)",
    "result_too_big": (
        "보호된 PNG가 50MB보다 커서 봇이 보낼 수 없습니다. 더 작은 사진을 보내 주세요."
    ),
    "cap_no_face": "원본에서 얼굴을 찾지 못했으므로 숨길 것이 없었습니다.",
    "cap_hidden_all": (
        "{group} {total}개 중 {hidden}개에서 얼굴이 숨겨졌습니다. JPEG 재저장과 축소 후에도 "
        "마찬가지입니다."
    ),
    "cap_hidden_some": (
        "{group} {total}개 중 {hidden}개에서 얼굴이 숨겨졌습니다. JPEG 재저장 후 {jpeg}/{total}, "
        "축소 후 {half}/{total}."
    ),
    "group_evaluator": "독립 검출기",
    "group_surrogate": "대상 검출기",
    "cap_still_found": "⚠ 아직 얼굴을 찾는 검출기: {names}. 더 강한 단계를 시도해 보세요.",
    "cap_quality": "SSIM {ssim} · 강도 {strength} · {seconds}초",
    "cap_ssim_face": "{ssim} (얼굴 {face})",
    "cap_filter": "🎨 필터: {name} (보호 전에 적용)",
    # 디스코드 (issue 6).
    "discord_help": (
        "사진 보호: /protect 에 이미지를 첨부하세요 (저와의 개인 메시지에서는 이미지만 보내도 "
        "됩니다). 다음을 보내 드립니다:\n"
        "• 보호된 이미지(무손실 PNG 파일): 이 파일을 저장하고 공유하세요.\n"
        "• 보고서: 아직 얼굴을 찾는 검출기와 화질(SSIM, 1.0 = 동일), 보호 전/후 미리보기\n\n"
        "결과 아래 버튼(본인만 누를 수 있음)으로 같은 사진을 더 약하게 또는 더 강하게 다시 "
        "보호하거나, 모든 스타일로 보거나(🎨 필터), 딥페이크 테스트(🎭)를 할 수 있습니다.\n"
        "이미지는 {max_mb}MB까지 받습니다. 디스코드 업로드 한도보다 큰 결과는 무손실 그대로 "
        "축소해서 보내 드리고 알려 드립니다.\n\n"
        "/strength — 기본 강도 1(약함) .. 5(가장 강함), 현재 {strength}\n"
        "/filter — 마지막 사진을 모든 스타일로 보기 · /filter 이름 — 기본 스타일\n"
        "/clip — 마지막 사진의 딥페이크 테스트\n"
        "/privacy — 보관하는 정보 · /forget — 내 정보 모두 삭제"
    ),
    "discord_not_yours": (
        "이 버튼은 그 사진을 보낸 사람만 누를 수 있습니다. 내 사진은 /protect 로 보호하세요."
    ),
    "discord_resized": (
        "⚠ 무손실 PNG가 {size_mb}MB로, 여기서 디스코드에 올릴 수 있는 {limit_mb}MB보다 큽니다. "
        "같은 보호된 이미지를 {width}×{height}로 축소한 무손실 PNG입니다 (손실 압축 JPEG는 "
        "보내지 않습니다: 재압축은 보호가 견뎌야 하는 바로 그 처리입니다). 원본 크기로 받으려면 "
        "화소 수가 더 적은 사진을 보내 주세요."
    ),
    "discord_result_too_big": (
        "결과가 축소해도 여기서 디스코드에 올릴 수 있는 {limit_mb}MB보다 큽니다. 더 작은 사진을 "
        "보내 주세요."
    ),
    "discord_too_big": "파일이 {max_mb}MB보다 큽니다. 더 작은 이미지를 보내 주세요.",
    "discord_report_title": "🛡 보호 보고서",
    "cmd_protect": "사진을 딥페이크 도구로부터 보호",
    "opt_image": "보호할 사진 (이미지 파일)",
    "opt_strength": "1(약함) .. 5(가장 강함), 기본값: 내 /strength",
    "opt_level": "1(약함) .. 5(가장 강함), 비워 두면 현재 강도 표시",
    "opt_filter": "새 사진의 기본 스타일, 비워 두면 마지막 사진을 모든 스타일로 보기",
    "note_animated_first_frame": "움직이는 이미지: 첫 프레임만 보호했습니다.",
    "note_multipage_first_page": "여러 페이지 이미지: 첫 페이지만 보호했습니다.",
    "note_exif_rotated": "방향 태그에 따라 사진을 바로 세웠습니다.",
    "note_cmyk_converted": "CMYK 색상을 RGB로 변환했습니다.",
    "note_16bit_reduced": "16비트 색상을 8비트로 줄였습니다.",
    "note_grayscale_expanded": "흑백 이미지를 RGB로 돌려드립니다.",
    "note_palette_converted": "팔레트 이미지를 풀 컬러로 돌려드립니다.",
    "note_alpha_flattened": "투명한 부분을 흰색 배경으로 합쳤습니다.",
    "note_icc_converted": "색 프로필을 적용했습니다 (결과는 일반 sRGB입니다).",
    "note_downscaled": "아주 큰 사진이라 보호하기 전에 크기를 줄였습니다.",
    "error_empty": "파일이 비어 있습니다 (0바이트). 사진을 다시 보내 주세요.",
    "error_not_an_image": "읽을 수 있는 이미지가 아닙니다. JPEG, PNG 또는 WebP 사진을 보내 주세요.",
    "error_unsupported_format": (
        "이 이미지 형식(HEIC, SVG, PDF, 동영상 등)은 읽을 수 없습니다. JPEG나 PNG로 보내 주세요 "
        "(아이폰에서는 파일이 아닌 일반 사진으로 보내 주세요)."
    ),
    "error_truncated": "이미지가 완전하지 않습니다 (중간에 끊겼습니다). 다시 보내 주세요.",
    "error_corrupt": "이미지 데이터가 손상되어 읽을 수 없습니다. 다른 파일로 시도해 주세요.",
    "error_too_many_pixels": (
        "이미지가 너무 큽니다 (5천만 화소 초과). 더 작은 이미지를 보내 주세요."
    ),
    "error_too_small": (
        "이미지가 너무 작아서 보호할 수 없습니다 (최소 16×16 화소). 더 큰 사진을 보내 주세요."
    ),
    "error_unknown_filter": (
        "알 수 없는 필터입니다. /filter 로 고르거나 /filter off 를 사용해 주세요."
    ),
    "error_internal": "사진을 보호하는 중 문제가 생겼습니다. 나중에 다시 시도해 주세요.",
    "error_timeout": "시간이 너무 오래 걸려 중단되었습니다. 나중에 다시 시도해 주세요.",
    "error_generic": "죄송합니다. 문제가 생겼습니다. 다시 시도해 주세요.",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "ko": KO}


def language(code: str | None) -> str:
    """The catalogue for a platform locale (``"ko"``, ``"ko-KR"``, ``"en-US"``…); else English."""
    base = (code or "").replace("_", "-").split("-")[0].lower()
    return base if base in CATALOGUES else DEFAULT


def text(lang: str, key: str, **values: object) -> str:
    """The message ``key`` in ``lang`` (English when missing), formatted with ``values``."""
    template = CATALOGUES.get(lang, EN).get(key) or EN[key]
    return template.format(**values) if values else template


def error_text(lang: str, code: str | None) -> str:
    """The user message for a ``ProtectResult.error`` code (unknown codes: a generic one)."""
    key = f"error_{code}"
    return text(lang, key if key in EN else "error_internal")


def note_text(lang: str, note: str) -> str | None:
    """The user message for a decode note, or None for notes not worth mentioning."""
    key = f"note_{note}"
    return text(lang, key) if key in EN else None
