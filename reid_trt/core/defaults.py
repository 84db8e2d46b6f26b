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
# Per crop, one graph run two ways (verification, conversions): FP32 and FP16 runtimes agree to
# rounding; an INT8 graph's two roundings of one value can land a level apart, so it is held to
# the level INT8 is held to against FP32 (calibration's low-tail cosine, quantize.Budget).
MIN_COSINE = {"fp32": 0.99999, "fp16": 0.999, "int8": 0.985}
VERIFY_CROPS = 8
VERIFY_SEED = 0

# F.normalize's epsilon: an all-zero embedding stays zero instead of becoming NaN.
L2_EPS = 1e-12

# Environment variable that points at the shared test data (weights, crops, MOT17 frames).
DATA_ENV = "REID_TRT_DATA"
# Where reid-trt keeps what it measured or traced once per machine (CPU backend choice, export
# traces); default ~/.cache/reid-trt.
CACHE_ENV = "REID_TRT_CACHE_DIR"

# Embedder preprocesses and runs this many crops at a time when the backend sets no maximum:
# memory stays bounded by the chunk (64 float crops: 25 MB) however many crops come in, and
# ONNX Runtime's CPU throughput no longer grows beyond a few dozen crops per call.
EMBED_CHUNK = 64

# Crops smaller than this (height, width) carry no identity: MOT readers drop such boxes and
# calibration refuses such images (a 1x1 crop, resized, calibrates ranges no real crop has).
MIN_CROP_HW = (32, 8)

# What one image file may be before it is decoded: a person crop is a few KB, a 4K video frame a
# few MB. Above either, the file is skipped and counted like an unreadable one, before OpenCV
# allocates anything (a small file can declare a huge picture: 40 M pixels decode to 120 MB).
MAX_IMAGE_BYTES = 64 << 20
MAX_IMAGE_PIXELS = 40_000_000
