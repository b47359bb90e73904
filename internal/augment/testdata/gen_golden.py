#!/usr/bin/python3
"""Golden vectors for internal/augment: the reference's view pipelines with
their random choices fixed, computed with Debian's python3-pil (Pillow
9.4.0), python3-numpy and python3-opencv (4.6.0), following the reference
code (utils/LoadData.py, utils/imutils.py, utils/transforms,
deeplab-pytorch/libs/datasets/base.py) step by step.

Run from this directory:  /usr/bin/python3 gen_golden.py  (rewrites golden.json)
"""
import hashlib
import json

import cv2
import numpy as np
from PIL import Image, ImageEnhance


def digest(a):
    """SHA-256 of the array's bytes plus its float64 sum (a hint on mismatch)."""
    a = np.ascontiguousarray(a)
    return {"sha256": hashlib.sha256(a.tobytes()).hexdigest(), "sum": float(a.astype(np.float64).sum())}


def lcg_bytes(seed, n):
    """Must match lcgBytes in golden_test.go: 32-bit LCG, top byte."""
    out = np.empty(n, np.uint8)
    x = seed
    for i in range(n):
        x = (1664525 * x + 1013904223) & 0xFFFFFFFF
        out[i] = x >> 24
    return out


def resize_short(img, short, isimg):  # imutils.ResizeShort
    w, h = img.size
    if w < h:
        shape = (short, int(round(h * short / w)))
    else:
        shape = (int(round(w * short / h)), short)
    return img.resize(shape, resample=Image.BICUBIC if isimg else Image.NEAREST)


def adjust_hue(img, f):  # transforms/functional.adjust_hue
    h, s, v = img.convert("HSV").split()
    np_h = np.array(h, dtype=np.uint8)
    with np.errstate(over="ignore"):
        np_h += np.uint8(f * 255)
    return Image.merge("HSV", (Image.fromarray(np_h, "L"), s, v)).convert("RGB")


OPS = {
    "brightness": lambda im, f: ImageEnhance.Brightness(im).enhance(f),
    "contrast": lambda im, f: ImageEnhance.Contrast(im).enhance(f),
    "saturation": lambda im, f: ImageEnhance.Color(im).enhance(f),
    "hue": adjust_hue,
}


def jitter(img, seq):
    for name, f in seq:
        img = OPS[name](img, f)
    return img


def to_tensor_norm(img, mean, std):  # ToTensor + Normalize, float32
    a = np.asarray(img, dtype=np.float32) / np.float32(255)
    a = (a - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return a.transpose(2, 0, 1)


def sal_tensor(sal):
    s = np.asarray(sal, dtype=np.float32) / np.float32(255)
    return s / (s.max() + np.float32(1e-10))


VOC = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
COCO = ((0.471, 0.448, 0.408), (0.234, 0.239, 0.242))


def voc_view(img, sal, short, crop, x0, y0, seq):
    image = resize_short(img, short, True)
    s = resize_short(sal, short, False)
    box = (x0, y0, x0 + crop, y0 + crop)
    image = jitter(image.crop(box), seq)
    return to_tensor_norm(image, *VOC), sal_tensor(s.crop(box)), image.size


def coco_view(img, sal, size, seq):
    image = jitter(img.resize((size, size), Image.BILINEAR), seq)
    return to_tensor_norm(image, *COCO), sal_tensor(sal.resize((size, size), Image.BILINEAR))


MEAN_BGR = np.array((104.008, 116.669, 122.675))


def deeplab(image_rgb, label, scale, crop, y0, x0, flip):  # base.py:_augmentation
    image = image_rgb[:, :, ::-1].astype(np.float32)  # cv2.imread(...).astype(np.float32)
    label = label.astype(np.int32)
    h, w = label.shape
    h, w = (int(h * scale), int(w * scale))
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    label = np.asarray(Image.fromarray(label).resize((w, h), resample=Image.NEAREST), dtype=np.int64)
    pad_h, pad_w = max(crop - h, 0), max(crop - w, 0)
    if pad_h > 0 or pad_w > 0:
        kw = dict(top=0, bottom=pad_h, left=0, right=pad_w, borderType=cv2.BORDER_CONSTANT)
        image = cv2.copyMakeBorder(image, value=MEAN_BGR, **kw)
        label = cv2.copyMakeBorder(label, value=255, **kw)
    image = image[y0:y0 + crop, x0:x0 + crop]
    label = label[y0:y0 + crop, x0:x0 + crop]
    if flip:
        image = np.fliplr(image).copy()
        label = np.fliplr(label).copy()
    image -= MEAN_BGR
    return image.transpose(2, 0, 1).astype(np.float32), label.astype(np.uint8)


def main():
    out = {}
    seq = [("saturation", 1.21), ("hue", -0.073), ("brightness", 0.84), ("contrast", 1.17)]
    out["jitter_seq"] = {"ops": [n for n, _ in seq], "factors": [f for _, f in seq]}

    views = []
    for (w, h, x0, y0) in [(30, 20, 3, 9), (20, 30, 10, 2), (30, 20, 9, 2)]:
        img = lcg_bytes(1, h * w * 3).reshape(h, w, 3)
        sal = lcg_bytes(2, h * w).reshape(h, w) // 2
        t, s, _ = voc_view(Image.fromarray(img), Image.fromarray(sal), 24, 20, x0, y0, seq)
        views.append({"w": w, "h": h, "short": 24, "crop": 20,
                      "x0": x0, "y0": y0, "out": digest(t), "out_sal": digest(s)})
    out["voc_view"] = views

    img = lcg_bytes(3, 17 * 26 * 3).reshape(17, 26, 3)
    sal = lcg_bytes(4, 17 * 26).reshape(17, 26)
    t, s = coco_view(Image.fromarray(img), Image.fromarray(sal), 20, seq)
    out["coco_view"] = {"w": 26, "h": 17, "size": 20, "out": digest(t), "out_sal": digest(s)}

    img = lcg_bytes(5, 17 * 23 * 3).reshape(17, 23, 3)
    label = np.array([0, 1, 5, 20, 255], np.uint8)[lcg_bytes(6, 17 * 23).reshape(17, 23) % 5]
    dl = []
    for (scale, crop, y0, x0, flip) in [(0.75, 15, 0, 1, True), (1.5, 15, 7, 12, False),
                                        (0.5, 15, 0, 0, False), (1.25, 30, 0, 0, True)]:
        t, l = deeplab(img, label, scale, crop, y0, x0, flip)
        dl.append({"scale": scale, "crop": crop, "y0": y0, "x0": x0, "flip": flip,
                   "out": digest(t), "label": digest(l)})
    out["deeplab"] = {"w": 23, "h": 17, "cases": dl}

    img = lcg_bytes(7, 9 * 13 * 3).reshape(9, 13, 3)
    ms = []
    for s in (0.5, 1.0, 1.5, 2.0):
        size = (int(round(13 * s)), int(round(9 * s)))
        t = to_tensor_norm(Image.fromarray(img).resize(size, resample=Image.BICUBIC), *VOC)
        ms.append({"scale": s, "w": size[0], "h": size[1], "out": digest(t),
                   "flipped": digest(np.ascontiguousarray(t[:, :, ::-1]))})
    out["multiscale"] = {"w": 13, "h": 9, "cases": ms}

    rounds = []
    for n in (375, 13, 5, 500, 333, 7, 1, 3):
        for s in (0.5, 1.5, 2.0, 0.75, 0.25, 1.25):
            rounds.append([n, s, int(round(n * s))])
    out["py_round"] = rounds
    shorts = []
    for (w, h) in [(500, 375), (375, 500), (500, 333), (333, 500), (480, 640), (500, 500), (353, 500), (500, 281)]:
        shorts.append([w, h, *resize_short(Image.new("L", (w, h)), 512, False).size])
    out["resize_short"] = shorts

    with open("golden.json", "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
