# Synthetic "face-like" test portraits for the virtual eMRTD DG2 (no real person).
import math, random
from PIL import Image, ImageDraw
def face(w, h, noise):
    im = Image.new("RGB", (w, h))
    px = im.load()
    rnd = random.Random(42)
    for y in range(h):
        for x in range(w):
            g = int(200 - 80 * y / h)
            n = rnd.randint(-noise, noise) if noise else 0
            px[x, y] = (max(0, min(255, g + n)), max(0, min(255, g + 10 + n)), max(0, min(255, 230 - 60 * x // w + n)))
    d = ImageDraw.Draw(im)
    d.ellipse([w*0.2, h*0.15, w*0.8, h*0.85], fill=(224, 180, 150))
    d.ellipse([w*0.33, h*0.38, w*0.43, h*0.45], fill=(40, 40, 60))
    d.ellipse([w*0.57, h*0.38, w*0.67, h*0.45], fill=(40, 40, 60))
    d.arc([w*0.38, h*0.55, w*0.62, h*0.7], 20, 160, fill=(150, 60, 60), width=max(1, w//40))
    return im
small = face(60, 80, 0)
small.save("face_60x80.jpg", quality=75)
small.save("face_60x80.jp2", irreversible=True, quality_mode="rates", quality_layers=[20])
big = face(240, 320, 18)
big.save("face_240x320.jpg", quality=86)
