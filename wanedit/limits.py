"""The provider's documented input limits, in one place (see docs/dashscope.md)."""

PROMPT_MAX = 2000
NEGATIVE_PROMPT_MAX = 500
IMAGES_MIN, IMAGES_MAX = 1, 3
N_MIN, N_MAX = 1, 4
SEED_MAX = 2_147_483_647
PIXELS_MIN, PIXELS_MAX = 768 * 768, 1280 * 1280
ASPECT_MIN, ASPECT_MAX = 1 / 4, 4.0
SIDE_MIN, SIDE_MAX = 384, 5000
IMAGE_BYTES_MAX = 10 * 1024 * 1024
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "WEBP")
METADATA_BYTES_MAX = 4096
IDEMPOTENCY_KEY_MAX = 200
# Ours, not the provider's: the most bytes a worker reads of one result image. A result is at
# most 1280x1280 px, under 7 MB even as an uncompressed RGBA PNG.
RESULT_BYTES_MAX = 32 * 1024 * 1024
