"""DeepfakeBlock worker: the protection engine, its detectors and the arq worker that runs them."""
