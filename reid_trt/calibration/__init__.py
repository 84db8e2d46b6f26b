"""INT8 calibration: re-ID datasets, calibration sets, Q/DQ quantization chosen by accuracy."""
