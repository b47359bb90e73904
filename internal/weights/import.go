package weights

import (
	"fmt"
	"strings"

	"github.com/l2g/l2g/internal/nn"
)

// Source names a kind of weight file Import reads.
type Source string

// The weight files the L2G pipeline starts from or resumes.
const (
	// ResNet38MXNet is the ImageNet ResNet-38 of the VOC recipe,
	// ilsvrc-cls_rna-a1_cls1000_ep-0001.params (MXNet), renamed by
	// ResNet38NameFromMXNet; the ImageNet classifier is dropped.
	ResNet38MXNet Source = "resnet38-mxnet"
	// ResNet38Pth is a converted ResNet-38 state_dict (models/resnet38_dict.pth
	// of the COCO recipe), reference names.
	ResNet38Pth Source = "resnet38-pth"
	// L2GGlobal and L2GLocal are the two nets of an official L2G checkpoint
	// ({"state_dict", "local_dict", "optimizer", "epoch", …}, keys with the
	// DataParallel "module." prefix).
	L2GGlobal Source = "l2g-global"
	L2GLocal  Source = "l2g-local"
	// DeepLabPth is a deeplab-pytorch file: a DeepLabV2_ResNet101_MSC
	// checkpoint or a converted Caffe initialisation (see DeepLabName).
	DeepLabPth Source = "deeplab-pth"
	// TorchvisionResNet101 is torchvision's resnet101 ImageNet state_dict,
	// mapped onto the DeepLab backbone (see TorchvisionResNet101Name).
	TorchvisionResNet101 Source = "torchvision-resnet101"
)

// Sources lists every Source, for flag help and config validation.
func Sources() []Source {
	return []Source{ResNet38MXNet, ResNet38Pth, L2GGlobal, L2GLocal, DeepLabPth, TorchvisionResNet101}
}

// ParseSource checks a Source name from a config file or flag.
func ParseSource(s string) (Source, error) {
	for _, v := range Sources() {
		if string(v) == s {
			return v, nil
		}
	}
	names := make([]string, 0, len(Sources()))
	for _, v := range Sources() {
		names = append(names, string(v))
	}
	return "", fmt.Errorf("unknown weight source %q (want one of %s)", s, strings.Join(names, ", "))
}

// Report says what an import filled.
type Report struct {
	Loaded     int      // store entries filled from the file
	Missing    []string // store entries the file did not have (left as they were)
	Unexpected []string // file keys (as stored) that match no store entry
}

// Read reads the tensors of a weight file of the given kind, under the
// names the file uses ("module." removed), and the renaming that maps them
// onto l2g's stores ("" drops a key).
func Read(path string, src Source) (map[string]nn.HostTensor, func(string) string, error) {
	switch src {
	case ResNet38MXNet:
		raw, err := ReadMXNet(path)
		if err != nil {
			return nil, nil, err
		}
		ts, err := RenameResNet38MXNet(path, raw)
		return ts, nil, err
	case ResNet38Pth:
		ts, err := ReadStateDict(path, "")
		return ts, classifierName, err
	case L2GGlobal, L2GLocal:
		loc := "state_dict"
		if src == L2GLocal {
			loc = "local_dict"
		}
		ts, err := ReadStateDict(path, loc)
		return ts, classifierName, err
	case DeepLabPth:
		ts, err := ReadStateDict(path, "")
		return ts, DeepLabName, err
	case TorchvisionResNet101:
		ts, err := ReadStateDict(path, "")
		return ts, TorchvisionResNet101Name, err
	}
	return nil, nil, fmt.Errorf("weights: unknown source %q", src)
}

// Import loads a weight file into st. With strict, any store entry the file
// lacks or any file key the store lacks is an error; otherwise they are
// reported (a fresh head over an ImageNet backbone is the usual non-strict
// case). Shape mismatches and unreadable files are always errors, of type
// *badinput.Error naming the file and the key.
func Import(st *nn.Store, path string, src Source, strict bool) (Report, error) {
	ts, rename, err := Read(path, src)
	if err != nil {
		return Report{}, err
	}
	missing, unexpected, err := st.LoadHost(ts, nn.LoadOpts{Strict: strict, Rename: rename, Source: path})
	if err != nil {
		return Report{Missing: missing, Unexpected: unexpected}, fmt.Errorf("weights: import %s (%s): %w", path, src, err)
	}
	return Report{Loaded: len(st.Names()) - len(missing), Missing: missing, Unexpected: unexpected}, nil
}
