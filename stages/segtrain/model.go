package segtrain

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/checkpoint"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/safetensors"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/internal/weights"
)

// CheckpointFormat marks this stage's training checkpoints.
const CheckpointFormat = "l2g-segtrain-checkpoint/1"

// Metadata keys of the model files and checkpoints. arch and num_classes
// are the keys the classifier files use too; model holds the whole
// ModelConfig, which rebuilds the net.
const (
	MetaArch       = "arch"
	MetaNumClasses = "num_classes"
	MetaModel      = "model"
	MetaIteration  = checkpoint.MetaIteration
)

// Tensor-name prefixes inside a checkpoint.
const (
	prefixNet   = "net/"
	prefixOptim = "optim/"
)

// newModel builds the network of m on dev (randomly initialised from
// libtorch's generator).
func newModel(m ModelConfig, dev torch.Device) (nn.Segmenter, error) {
	net, err := nn.NewSegmenter(m.Arch, m.NumClasses, dev, m.options()...)
	if err != nil {
		return nil, badinput.Wrap("", "model", err)
	}
	return net, nil
}

// modelMeta is the metadata of model files and checkpoints.
func modelMeta(m ModelConfig, it int) (map[string]string, error) {
	b, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("segtrain: encode model config: %w", err)
	}
	return map[string]string{
		MetaArch:       m.Arch,
		MetaNumClasses: strconv.Itoa(m.NumClasses),
		MetaModel:      string(b),
		MetaIteration:  strconv.Itoa(it),
	}, nil
}

// LoadModel builds the network a model file or training checkpoint of this
// stage describes (metadata "model", else "arch" and "num_classes") on dev
// and loads its weights, every name matching. Problems are
// *badinput.Error naming the file and key.
func LoadModel(path string, dev torch.Device) (nn.Segmenter, ModelConfig, error) {
	if path == "" {
		return nil, ModelConfig{}, badinput.New("", "checkpoint", "no model file given")
	}
	st, meta, err := safetensors.Read(path)
	if err != nil {
		return nil, ModelConfig{}, err
	}
	var m ModelConfig
	if s, ok := meta[MetaModel]; ok {
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			return nil, ModelConfig{}, badinput.New(path, "__metadata__."+MetaModel, "not a model config: %v", err)
		}
	} else {
		m.Arch = meta[MetaArch]
		if m.NumClasses, err = strconv.Atoi(meta[MetaNumClasses]); err != nil {
			return nil, ModelConfig{}, badinput.New(path, "__metadata__."+MetaNumClasses, "%q is not a class count", meta[MetaNumClasses])
		}
	}
	if err := m.validate(""); err != nil {
		return nil, ModelConfig{}, badinput.Wrap(path, "__metadata__."+MetaModel, err)
	}
	net, err := newModel(m, dev)
	if err != nil {
		return nil, ModelConfig{}, badinput.Wrap(path, "__metadata__."+MetaModel, err)
	}
	prefix := ""
	if meta[checkpoint.MetaFormat] == CheckpointFormat {
		prefix = prefixNet
	}
	host, err := nn.HostFromSafetensors(path, st)
	if err == nil {
		_, _, err = net.Store().LoadHost(host, nn.LoadOpts{Strict: true, Source: path, Rename: func(k string) string {
			if !strings.HasPrefix(k, prefix) {
				return "" // the optimizer state and RNG of a checkpoint
			}
			return strings.TrimPrefix(k, prefix)
		}})
	}
	if err != nil {
		net.Store().Close()
		return nil, ModelConfig{}, err
	}
	return net, m, nil
}

// loadInit copies the matching tensors of a weight file into net. source
// is a weights.Source name: deeplab-pth (a deeplab-pytorch checkpoint or
// converted Caffe initialisation) or torchvision-resnet101; "" reads a
// .safetensors file (deeplab-pytorch state_dict names, a model file or a
// checkpoint of this stage) and a .pth file as deeplab-pth. Bare
// DeepLabV1 names get "base." (main.py loads its init files into
// model.base) and its "fc" classifier is dropped (weights.DeepLabName).
// Tensors whose name starts with an exclude prefix are skipped; the shapes
// of the others must match.
func loadInit(net nn.Segmenter, path, source string, exclude []string) (string, error) {
	var (
		host   map[string]nn.HostTensor
		rename func(string) string
		err    error
	)
	if source == "" && strings.EqualFold(filepath.Ext(path), ".safetensors") {
		st, meta, err := safetensors.Read(path)
		if err != nil {
			return "", err
		}
		if host, err = nn.HostFromSafetensors(path, st); err != nil {
			return "", err
		}
		prefix := ""
		if meta[checkpoint.MetaFormat] == CheckpointFormat {
			prefix = prefixNet
		}
		rename = func(k string) string {
			if !strings.HasPrefix(k, prefix) || k == checkpoint.KeyRNG {
				return "" // a checkpoint's optimizer state and RNG
			}
			return weights.DeepLabName(strings.TrimPrefix(k, prefix))
		}
	} else {
		src := weights.DeepLabPth
		if source != "" {
			if src, err = weights.ParseSource(source); err != nil {
				return "", badinput.Wrap("", "init_source", err)
			}
		}
		if src != weights.DeepLabPth && src != weights.TorchvisionResNet101 {
			return "", badinput.New(path, "init_source", "%s weights are a classifier's, not a segmentation network's", src)
		}
		if host, rename, err = weights.Read(path, src); err != nil {
			return "", err
		}
	}
	keep := func(k string) string {
		k = rename(k)
		for _, p := range exclude {
			if strings.HasPrefix(k, p) {
				return ""
			}
		}
		return k
	}
	missing, _, err := net.Store().LoadHost(host, nn.LoadOpts{Rename: keep, Source: path})
	if err != nil {
		return "", err
	}
	total := len(net.Store().Entries())
	if len(missing) == total {
		return "", badinput.New(path, "init_weights", "no tensor matches a parameter of the network")
	}
	return fmt.Sprintf("initialised %d of %d tensors from %s", total-len(missing), total, path), nil
}
