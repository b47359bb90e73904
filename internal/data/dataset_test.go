package data_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
)

// fixture writes a small VOC-layout dataset: one 8x6 image per id and a
// mask whose pixels hold the given labels.
type fixture struct {
	t    *testing.T
	root string
}

func newFixture(t *testing.T) *fixture {
	return &fixture{t: t, root: t.TempDir()}
}

func (f *fixture) image(id string, w, h int) {
	f.t.Helper()
	img := imaging.NewRGB(w, h)
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	if err := data.EncodeJPEG(&buf, img, 90); err != nil {
		f.t.Fatal(err)
	}
	writeFile(f.t, filepath.Join(f.root, "JPEGImages", id+".jpg"), buf.Bytes())
}

func (f *fixture) mask(dir, id string, w, h int, values ...uint8) {
	f.t.Helper()
	m := imaging.NewGray(w, h)
	for i, v := range values {
		m.Pix[i] = v
	}
	var buf bytes.Buffer
	if err := data.EncodeIndexPNG(&buf, m); err != nil {
		f.t.Fatal(err)
	}
	writeFile(f.t, filepath.Join(f.root, dir, id+".png"), buf.Bytes())
}

func (f *fixture) file(name, text string) string {
	p := filepath.Join(f.root, name)
	writeFile(f.t, p, []byte(text))
	return p
}

func labelsOf(s *data.Split) map[string][]int {
	out := map[string][]int{}
	for _, it := range s.Items {
		out[it.ID] = it.Labels
	}
	return out
}

func TestOpenClassListWithTrailingSpaces(t *testing.T) {
	f := newFixture(t)
	f.file("train_cls.txt", "a 14 \nb 3 0 3  \r\n\n")
	s, err := data.Open(context.Background(), data.Spec{Root: f.root, List: "train_cls.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if s.NumClasses() != 20 || s.LabelsFrom != filepath.Join(f.root, "train_cls.txt") {
		t.Errorf("classes %d, labels from %q", s.NumClasses(), s.LabelsFrom)
	}
	want := map[string][]int{"a": {14}, "b": {0, 3}}
	if got := labelsOf(s); !reflect.DeepEqual(got, want) {
		t.Errorf("labels %v, want %v", got, want)
	}
	it := s.Items[1]
	if it.ImagePath != filepath.Join(f.root, "JPEGImages", "b.jpg") || it.MaskPath != "" || it.SalPath != "" || it.Line != 2 {
		t.Errorf("item %+v", it)
	}
	if v := it.MultiHot(20); v[0] != 1 || v[3] != 1 || v[1] != 0 {
		t.Errorf("multi-hot %v", v)
	}
}

func TestPairListLabelsMatchedByID(t *testing.T) {
	f := newFixture(t)
	// Different order in the two files: by line index b would get a's labels.
	f.file("train_aug.txt", "/JPEGImages/b.jpg /SegmentationClassAug/b.png\n/JPEGImages/a.jpg /SegmentationClassAug/a.png\n")
	f.file("train_cls.txt", "a 1\nb 2 5\nc 7\n")
	f.file("classes.txt", "c0\nc1\nc2\nc3\nc4\nc5\nc6\nc7\n")
	f.mask("SegmentationClassAug", "a", 4, 4)
	f.mask("SegmentationClassAug", "b", 4, 4)
	s, err := data.Open(context.Background(), data.Spec{Root: f.root, List: "train_aug.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if s.NumClasses() != 8 || s.Classes[7] != "c7" {
		t.Errorf("classes %v", s.Classes)
	}
	if s.Items[0].ID != "b" || !reflect.DeepEqual(s.Items[0].Labels, []int{2, 5}) || !reflect.DeepEqual(s.Items[1].Labels, []int{1}) {
		t.Errorf("items %+v", s.Items)
	}
	if s.Items[0].MaskPath != filepath.Join(f.root, "SegmentationClassAug", "b.png") {
		t.Errorf("mask path %q", s.Items[0].MaskPath)
	}
	if i, ok := s.Lookup("a"); !ok || i != 1 {
		t.Errorf("Lookup(a) = %d, %v", i, ok)
	}
}

func TestLabelsDerivedFromMasks(t *testing.T) {
	f := newFixture(t)
	f.file("val.txt", "/JPEGImages/a.jpg /SegmentationClass/a.png\n/JPEGImages/b.jpg /SegmentationClass/b.png\n/JPEGImages/c.jpg /SegmentationClass/c.png\n")
	f.mask("SegmentationClass", "a", 4, 4, 0, 3, 3, 255, 20)
	f.mask("SegmentationClass", "b", 4, 4, 255, 255)
	f.mask("SegmentationClass", "c", 4, 4, 1)
	s, err := data.Open(context.Background(), data.Spec{Root: f.root, List: "val.txt", Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{"a": {2, 19}, "b": nil, "c": {0}}
	if got := labelsOf(s); !reflect.DeepEqual(got, want) || s.LabelsFrom != "" {
		t.Errorf("derived labels %v (from %q), want %v", got, s.LabelsFrom, want)
	}
	// A value above the class count is bad input naming the mask.
	f.mask("SegmentationClass", "c", 4, 4, 21)
	_, err = data.Open(context.Background(), data.Spec{Root: f.root, List: "val.txt"})
	if err == nil || !badinput.Is(err) || !strings.Contains(err.Error(), "c.png") {
		t.Errorf("mask value 21: %v", err)
	}
}

func TestListProblemsNameFileAndLine(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		text, want string
	}{
		{"a 0\n../x 1\n", "list.txt:2"},
		{"a 0\nb 20\n", "list.txt:2"},
		{"a 0\nb -1\n", "list.txt:2"},
		{"a 0\nb 1\na 2\n", "list.txt:3"},
		{"a 0\nb cat\n", "list.txt:2"},
		{"/JPEGImages/a.jpg /SegmentationClass/a.png\n/../../etc/b.jpg /SegmentationClass/b.png\n", "list.txt:2"},
		{"/JPEGImages/a.jpg /SegmentationClass/a.png\n/JPEGImages/b.jpg /SegmentationClass/../../b.png\n", "list.txt:2"},
		{"/JPEGImages/a.jpg /SegmentationClass/a.png\n/JPEGImages/b.jpg /SegmentationClass/c.png\n", "list.txt:2"},
		{"a\n../../b.jpg\n", "list.txt:2"},
		{"", "list.txt"},
	}
	for _, c := range cases {
		f.file("list.txt", c.text)
		_, err := data.Open(context.Background(), data.Spec{Root: f.root, List: "list.txt"})
		if err == nil || !badinput.Is(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("list %q: error %v, want bad input at %s", c.text, err, c.want)
		}
	}
	// Escaping paths are rejected, not opened: the error says so.
	f.file("list.txt", "/JPEGImages/../../../etc/passwd.jpg /SegmentationClass/passwd.png\n")
	_, err := data.Open(context.Background(), data.Spec{Root: f.root, List: "list.txt"})
	if err == nil || !strings.Contains(err.Error(), "escapes the dataset root") {
		t.Errorf("escape: %v", err)
	}
	// An absolute path inside the root is accepted as is; a leading "/" is
	// otherwise the dataset root, as in the reference.
	f.file("list.txt", filepath.Join(f.root, "JPEGImages", "a.jpg")+"\n/JPEGImages/b.jpg\n")
	f.mask("SegmentationClass", "a", 2, 2, 4)
	f.mask("SegmentationClass", "b", 2, 2, 5)
	s, err := data.Open(context.Background(), data.Spec{Root: f.root, List: "list.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Items[0].ImagePath != filepath.Join(f.root, "JPEGImages", "a.jpg") || s.Items[1].ImagePath != filepath.Join(f.root, "JPEGImages", "b.jpg") {
		t.Errorf("paths %q %q", s.Items[0].ImagePath, s.Items[1].ImagePath)
	}
	if !reflect.DeepEqual(labelsOf(s), map[string][]int{"a": {3}, "b": {4}}) {
		t.Errorf("labels %v", labelsOf(s))
	}
}

func TestOpenReportsAllListProblems(t *testing.T) {
	f := newFixture(t)
	f.file("train_cls.txt", "a 0\nb 99\nc/d 1\na 2\n")
	_, err := data.Open(context.Background(), data.Spec{Root: f.root, List: "train_cls.txt"})
	var l *badinput.List
	if !errors.As(err, &l) || len(l.Errs) != 3 {
		t.Fatalf("got %v, want 3 problems", err)
	}
	for i, line := range []int{2, 3, 4} {
		if l.Errs[i].Line != line {
			t.Errorf("problem %d at line %d, want %d", i, l.Errs[i].Line, line)
		}
	}
}

func TestLoad(t *testing.T) {
	f := newFixture(t)
	f.file("train_cls.txt", "a 1\nb 2\n")
	f.image("a", 8, 6)
	f.image("b", 8, 6)
	f.mask("SegmentationClassAug", "a", 8, 6, 0, 2, 255)
	f.mask("SegmentationClassAug", "b", 6, 8)
	sal := imaging.NewGray(8, 6)
	sal.Pix[5] = 200
	var buf bytes.Buffer
	if err := data.EncodeGrayPNG(&buf, sal); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(f.root, "Sal", "a.png"), buf.Bytes())
	writeFile(t, filepath.Join(f.root, "Sal", "b.png"), buf.Bytes())
	s, err := data.Open(context.Background(), data.Spec{Root: f.root, List: "train_cls.txt"})
	if err != nil {
		t.Fatal(err)
	}
	smp, err := s.Load(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if smp.Image.W != 8 || smp.Image.H != 6 || smp.Mask.Pix[1] != 2 || smp.Mask.Pix[2] != 255 || smp.Sal.Pix[5] != 200 || smp.ID != "a" {
		t.Errorf("sample %+v", smp)
	}
	_, err = s.Load(context.Background(), 1)
	if err == nil || !badinput.Is(err) || !strings.Contains(err.Error(), "b.png: size") {
		t.Errorf("size mismatch: %v", err)
	}
}
