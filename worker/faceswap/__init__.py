"""Deepfake comparison clip (issue 5): a classical face-swap pipeline of the same shape as the
real tools (extract → align → swap → blend) run on the original and on the protected photo.

- ``extract``: dlib HOG or MMOD detection (never an attack surrogate) + 68 landmarks
- ``target``: the moving target face, generated from scikit-image's ``astronaut``
- ``swapper``: the ``Swapper`` interface and the classical swapper (default)
- ``identity``: dlib's face-recognition descriptor distance (below 0.6: same person)
- ``clip``: both sides, captions and the side-by-side MP4 (``video``: ffmpeg, in memory)
"""

