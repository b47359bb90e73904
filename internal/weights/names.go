package weights

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/nn"
)

// mxBN maps MXNet BatchNorm names to PyTorch's.
func mxBN(s string) (string, bool) {
	switch s {
	case "beta":
		return "bias", true
	case "gamma":
		return "weight", true
	case "mean":
		return "running_mean", true
	case "var":
		return "running_var", true
	}
	return "", false
}

// ResNet38NameFromMXNet maps a name in the ImageNet ResNet-38 .params
// (ilsvrc-cls_rna-a1_cls1000_ep-0001.params) to the reference's PyTorch name,
// by the rules of resnet38_base.py:convert_mxnet_to_torch. Split on "_":
//   - a first token containing "conv1a" → conv1a.weight;
//   - "linear1000" (the ImageNet classifier) is dropped (keep false);
//   - a second token containing "branch" names a block: the first token
//     ends in the stage digit and either "a" (res2a → b2) or a letter and
//     an index (res4b3 → b4_3); "res…" are convolutions (.weight), "bn…"
//     BatchNorms (beta/gamma/moving_mean/moving_var → bias/weight/
//     running_mean/running_var); the layer is <conv|bn>_<second token>;
//   - anything else is bn7 (its BN suffix as above).
//
// The "arg:"/"aux:" prefixes do not matter: the rules read the first token
// from its end.
func ResNet38NameFromMXNet(k string) (name string, keep bool, err error) {
	toks := strings.Split(k, "_")
	last := toks[len(toks)-1]
	switch {
	case strings.Contains(toks[0], "conv1a"):
		return "conv1a.weight", true, nil
	case strings.Contains(toks[0], "linear1000"):
		return "", false, nil
	case len(toks) > 1 && strings.Contains(toks[1], "branch"):
		t0 := toks[0]
		if len(t0) < 3 {
			return "", false, fmt.Errorf("block name %q is too short", t0)
		}
		var block string
		if t0[len(t0)-1] != 'a' {
			block = "b" + t0[len(t0)-3:len(t0)-2] + "_" + t0[len(t0)-1:]
		} else {
			block = "b" + t0[len(t0)-2:len(t0)-1]
		}
		if strings.Contains(t0, "res") {
			return block + ".conv_" + toks[1] + ".weight", true, nil
		}
		bn, ok := mxBN(last)
		if !ok {
			return "", false, fmt.Errorf("unknown BatchNorm parameter %q", last)
		}
		return block + ".bn_" + toks[1] + "." + bn, true, nil
	}
	bn, ok := mxBN(last)
	if !ok {
		return "", false, fmt.Errorf("no ResNet-38 parameter matches (not conv1a, a block, linear1000 or a bn7 statistic)")
	}
	return "bn7." + bn, true, nil
}

// RenameResNet38MXNet applies ResNet38NameFromMXNet to every tensor read
// from path; an unmappable name is bad input.
func RenameResNet38MXNet(path string, in map[string]nn.HostTensor) (map[string]nn.HostTensor, error) {
	out := make(map[string]nn.HostTensor, len(in))
	from := map[string]string{}
	for k, v := range in {
		name, keep, err := ResNet38NameFromMXNet(k)
		if err != nil {
			return nil, badinput.New(path, k, "%v", err)
		}
		if !keep {
			continue
		}
		if prev, dup := from[name]; dup {
			return nil, badinput.New(path, k, "maps to %s, as %s does", name, prev)
		}
		from[name] = k
		out[name] = v
	}
	return out, nil
}

// dropBatchesTracked is PyTorch BatchNorm's step counter, which eval-mode BN
// does not use and the stores do not keep.
func dropBatchesTracked(k string) bool { return strings.HasSuffix(k, ".num_batches_tracked") }

// classifierName keeps reference classifier names (resnet38_dict.pth, L2G
// checkpoints) as they are.
func classifierName(k string) string {
	if dropBatchesTracked(k) {
		return ""
	}
	return k
}

// DeepLabName maps a deeplab-pytorch key to the Segmenter's: checkpoints
// of DeepLabV2_ResNet101_MSC already say "base.…"; the converted Caffe
// initialisations (deeplabv1_resnet101-coco.pth, …-imagenet.pth) hold the
// bare DeepLabV1 keys, which get "base.", and their "fc" classifier is
// dropped — as main.py's non-strict load into model.base skips it.
func DeepLabName(k string) string {
	switch {
	case dropBatchesTracked(k), strings.HasPrefix(k, "fc."):
		return ""
	case strings.HasPrefix(k, "base."):
		return k
	}
	return "base." + k
}

// TorchvisionResNet101Name maps torchvision's resnet101 ImageNet keys onto
// the DeepLab backbone:
//
//	conv1, bn1                     → base.layer1.conv1.{conv,bn}
//	layerN.I.conv1/bn1             → base.layer(N+1).block(I+1).reduce.{conv,bn}
//	layerN.I.conv2/bn2             → ….conv3x3.{conv,bn}
//	layerN.I.conv3/bn3             → ….increase.{conv,bn}
//	layerN.I.downsample.0/.1       → ….shortcut.{conv,bn}
//	fc.*, *.num_batches_tracked    → dropped
//
// Shapes agree, but torchvision's ResNet strides the 3×3 convolution while
// the Caffe-style net strides the first 1×1 (and its stem pool is not
// ceil_mode), and it expects RGB inputs in [0, 1] normalised by the ImageNet
// mean/std, not Caffe's mean-subtracted BGR: the features differ from
// torchvision's. Names that match no rule are returned unchanged, so the
// load reports them as unexpected.
func TorchvisionResNet101Name(k string) string {
	if dropBatchesTracked(k) || strings.HasPrefix(k, "fc.") {
		return ""
	}
	parts := strings.Split(k, ".")
	if len(parts) == 2 {
		switch parts[0] {
		case "conv1":
			return "base.layer1.conv1.conv." + parts[1]
		case "bn1":
			return "base.layer1.conv1.bn." + parts[1]
		}
		return k
	}
	if len(parts) < 4 || !strings.HasPrefix(parts[0], "layer") {
		return k
	}
	layer, err1 := strconv.Atoi(strings.TrimPrefix(parts[0], "layer"))
	block, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || layer < 1 || layer > 4 || block < 0 {
		return k
	}
	prefix := fmt.Sprintf("base.layer%d.block%d.", layer+1, block+1)
	switch {
	case len(parts) == 4:
		unit := map[string]string{
			"conv1": "reduce.conv", "bn1": "reduce.bn",
			"conv2": "conv3x3.conv", "bn2": "conv3x3.bn",
			"conv3": "increase.conv", "bn3": "increase.bn",
		}[parts[2]]
		if unit == "" {
			return k
		}
		return prefix + unit + "." + parts[3]
	case len(parts) == 5 && parts[2] == "downsample" && parts[3] == "0":
		return prefix + "shortcut.conv." + parts[4]
	case len(parts) == 5 && parts[2] == "downsample" && parts[3] == "1":
		return prefix + "shortcut.bn." + parts[4]
	}
	return k
}
