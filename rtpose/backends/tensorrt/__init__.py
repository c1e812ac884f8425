"""The TensorRT backend: the runtime (:mod:`.runtime`), CUDA-graph batch buckets
(:mod:`.batching`), which TensorRT is installed (:mod:`.flavour`) and the engine manifest
(:mod:`.manifest`). Importing this package imports no TensorRT."""
