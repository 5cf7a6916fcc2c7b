"""Competitor of `ofa_bench data`: the OFA reference's training input pipeline
in PyTorch, timed the same way.

Reads one JSON request on stdin: {"root", "image_size", "batch_size",
"workers", "batches", "warmup", "resize_scale"}; builds torchvision's
ImageFolder(root) with the reference's training transforms
(RandomResizedCrop(image_size, scale=(resize_scale, 1)), RandomHorizontalFlip,
ToTensor, Normalize(ImageNet)), a DataLoader(batch_size, shuffle=True,
num_workers=workers), and times `batches` batches after `warmup` untimed ones
(epochs restart when the data runs out). Writes one JSON object on stdout:
versions, images, seconds, images_per_s; or {"error": "..."}.
"""
import json
import sys
import time


def main():
    req = json.load(sys.stdin)
    try:
        import PIL
        import torch
        import torchvision
        import torchvision.datasets as datasets
        import torchvision.transforms as transforms
    except Exception as e:  # noqa: BLE001 - reported to the caller
        print(json.dumps({"error": "cannot import torch/torchvision/PIL: %s" % e}))
        return
    R = int(req["image_size"])
    tf = transforms.Compose([
        transforms.RandomResizedCrop(R, scale=(float(req.get("resize_scale", 0.08)), 1.0)),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    ds = datasets.ImageFolder(req["root"], tf)
    workers = int(req["workers"])
    loader = torch.utils.data.DataLoader(ds, batch_size=int(req["batch_size"]), shuffle=True,
                                         num_workers=workers, persistent_workers=workers > 0)
    warmup, batches = int(req["warmup"]), int(req["batches"])
    done = 0
    images = 0
    # The clock starts once the last warmup batch is in (at once without warmup).
    t0 = time.perf_counter()
    while done < warmup + batches:
        for x, _ in loader:
            if done >= warmup:
                images += x.shape[0]
            done += 1
            if done == warmup:
                t0 = time.perf_counter()
            if done == warmup + batches:
                break
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pil": PIL.__version__,
        "dataset_size": len(ds),
        "images": images,
        "seconds": seconds,
        "images_per_s": images / seconds if seconds > 0 else None,
    }))


if __name__ == "__main__":
    main()
