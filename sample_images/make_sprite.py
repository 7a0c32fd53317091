"""Generate sample_images/sprite.png: a hard-edged RGBA sprite with hidden colors under alpha 0."""

import numpy as np
from PIL import Image

h = w = 160
y, x = np.mgrid[0:h, 0:w].astype(np.float64)
rgb = np.zeros((h, w, 3), np.uint8)
# Hidden garbage under the transparent area: bright magenta/green noise that must never
# reach the palette.
rng = np.random.default_rng(7)
rgb[...] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
alpha = np.zeros((h, w), np.uint8)
cy, cx = 80, 80
r = np.hypot(y - cy, x - cx)
disk = r < 64
# a shaded ball: radial gradient from warm highlight to deep blue
t = np.clip(np.hypot(y - 55, x - 60) / 100, 0, 1)
ball = np.stack([255 * (1 - t) + 30 * t, 200 * (1 - t) + 60 * t, 80 * (1 - t) + 180 * t], -1)
rgb[disk] = ball[disk].astype(np.uint8)
alpha[disk] = 255
ring = (r > 68) & (r < 76)
rgb[ring] = (20, 160, 90)
alpha[ring] = 255
img = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
img.save("sample_images/sprite.png", optimize=True)
