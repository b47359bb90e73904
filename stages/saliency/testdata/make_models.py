# Writes the tiny TorchScript saliency models model_test.go runs (Debian's
# python3-torch 1.13 is enough): python3 make_models.py
import torch


class Tiny(torch.nn.Module):
    """Scores 2·x0 + x1 − x2 + 0.5 per pixel: an output the test computes by hand."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([2.0, 1.0, -1.0]).view(1, 3, 1, 1))
            self.conv.bias.fill_(0.5)

    def forward(self, x):
        return self.conv(x)


class Half(torch.nn.Module):
    """The same scores at half resolution, as (N, h, w): the stage must resize."""

    def __init__(self):
        super().__init__()
        self.tiny = Tiny()

    def forward(self, x):
        return torch.nn.functional.avg_pool2d(self.tiny(x), 2)[:, 0]


class Wrong(torch.nn.Module):
    """Three output channels: not a saliency map."""

    def forward(self, x):
        return x


torch.manual_seed(0)
torch.jit.script(Tiny()).save("tiny_saliency.pt")
torch.jit.script(Half()).save("half_saliency.pt")
torch.jit.script(Wrong()).save("wrong_saliency.pt")
