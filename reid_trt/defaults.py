"""Every default of the pipeline, in one place."""

# torchreid trains OSNet on 256x128 (height x width) RGB crops, ImageNet-normalised.
INPUT_HEIGHT = 256
INPUT_WIDTH = 128
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EMBEDDING_DIM = 512

# Opset 18 is torch's dynamo exporter's native opset (asking for less runs onnx's version
# converter, which fails on ReduceMean); TensorRT 10.x (JetPack 6.1+), 11.x and RTX parse it.
ONNX_OPSET = 18
INPUT_NAME = "images"
OUTPUT_NAME = "embeddings"

# Verification: ONNX Runtime against PyTorch on the same crops (minimum cosine per crop).
MIN_COSINE = {"fp32": 0.99999, "fp16": 0.999}
VERIFY_CROPS = 8
VERIFY_SEED = 0

# F.normalize's epsilon: an all-zero embedding stays zero instead of becoming NaN.
L2_EPS = 1e-12

# Environment variable that points at the shared test data (weights, crops, MOT17 frames).
DATA_ENV = "REID_TRT_DATA"
