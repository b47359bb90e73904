package data

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/l2g/l2g/internal/badinput"
)

// Kind selects a dataset layout and its built-in class names.
type Kind int

const (
	// VOC is PASCAL VOC 2012 (20 classes); also the synthetic datasets.
	VOC Kind = iota
	// COCO is MS-COCO 2014 (80 classes, no SegmentationClassAug).
	COCO
)

func (k Kind) String() string {
	switch k {
	case VOC:
		return "voc"
	case COCO:
		return "coco"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ParseKind parses "voc" or "coco".
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(s) {
	case "voc", "voc12":
		return VOC, nil
	case "coco", "coco14":
		return COCO, nil
	}
	return 0, fmt.Errorf("unknown dataset kind %q (want voc or coco)", s)
}

// VOCClasses returns the 20 VOC class names in label order (CAM channel k ↔
// segmentation label k+1).
func VOCClasses() []string {
	return []string{
		"aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
		"diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
	}
}

// COCOClasses returns the 80 COCO category names in ascending COCO
// category-id order, which is the order of the reference's label indices.
func COCOClasses() []string {
	return []string{
		"person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
		"fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
		"elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
		"skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
		"wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
		"broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
		"dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
		"toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
	}
}

// Classes returns the built-in class names of k.
func (k Kind) Classes() []string {
	if k == COCO {
		return COCOClasses()
	}
	return VOCClasses()
}

// ReadClasses reads a classes file: one class name per line, in label
// order. Surrounding spaces and trailing blank lines are ignored; a blank
// line between names, or a repeated name, is an error.
func ReadClasses(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	var names []string
	seen := map[string]int{}
	blank := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for ln := 1; sc.Scan(); ln++ {
		name := strings.TrimSpace(sc.Text())
		if name == "" {
			if blank == 0 {
				blank = ln
			}
			continue
		}
		if blank != 0 {
			return nil, badinput.AtLine(path, blank, "blank line between class names")
		}
		if first, ok := seen[name]; ok {
			return nil, badinput.AtLine(path, ln, "class %q repeats line %d", name, first)
		}
		seen[name] = ln
		names = append(names, name)
	}
	if err := sc.Err(); err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	if len(names) == 0 {
		return nil, badinput.New(path, "", "no class names")
	}
	if len(names) > 254 {
		// Labels 1..C and 255 must fit in a uint8 mask.
		return nil, badinput.New(path, "", "%d classes, at most 254 fit in an 8-bit mask", len(names))
	}
	return names, nil
}
