package data_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
)

func TestCheckReportsAllProblems(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		f.image(id, 8, 6)
	}
	f.file("JPEGImages/c.jpg", "\xff\xd8\xff corrupt jpeg")
	f.mask("SegmentationClassAug", "a", 8, 6, 1)
	f.mask("SegmentationClassAug", "b", 6, 8)        // wrong size
	f.mask("SegmentationClassAug", "c", 8, 6)        // fine, but its image is corrupt
	f.mask("SegmentationClassAug", "d", 8, 6, 0, 77) // value out of range
	// e has no mask.
	f.file("train_cls.txt", "a 0\nb 1\nc 2\nd 3\ne 4\nf 25\n")
	// The pair list shares files with the class list: each is checked once.
	f.file("train_aug.txt", "/JPEGImages/a.jpg /SegmentationClassAug/a.png\n/JPEGImages/b.jpg /SegmentationClassAug/b.png\n")

	rep, err := data.Check(context.Background(), f.root, data.CheckOptions{Workers: 2})
	var l *badinput.List
	if !errors.As(err, &l) {
		t.Fatalf("Check = %v, want a problem list", err)
	}
	want := []string{
		"train_cls.txt:6: label", // f: class 25 of 20
		"c.jpg",                  // corrupt image
		"d.png: value",           // mask value 77
		"e.png does not exist",   // missing mask, reported at its list line
		"b.png: size",            // 6x8 mask for an 8x6 image
	}
	if len(l.Errs) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(l.Errs), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(l.Errs[i].Error(), w) {
			t.Errorf("problem %d = %q, want it to mention %q", i, l.Errs[i].Error(), w)
		}
	}
	if l.Errs[3].Path != filepath.Join(f.root, "train_cls.txt") || l.Errs[3].Line != 5 {
		t.Errorf("missing mask reported at %s:%d", l.Errs[3].Path, l.Errs[3].Line)
	}
	if len(rep.Lists) != 2 || rep.Items != 7 || rep.Files != 10 {
		t.Errorf("report %+v, want 2 lists, 7 items, 10 files", rep)
	}

	// Saliency is required for every item once Sal/ exists.
	g := newFixture(t)
	g.image("a", 4, 4)
	g.mask("SegmentationClass", "a", 4, 4, 1)
	g.file("val.txt", "/JPEGImages/a.jpg /SegmentationClass/a.png\n")
	if _, err := data.Check(context.Background(), g.root, data.CheckOptions{}); err != nil {
		t.Fatalf("clean dataset: %v", err)
	}
	g.mask("Sal", "other", 4, 4)
	_, err = data.Check(context.Background(), g.root, data.CheckOptions{Lists: []string{"val.txt"}})
	if err == nil || !strings.Contains(err.Error(), "saliency") {
		t.Errorf("missing saliency: %v", err)
	}
	if _, err := data.Check(context.Background(), filepath.Join(g.root, "nope"), data.CheckOptions{}); !badinput.Is(err) {
		t.Errorf("missing root: %v", err)
	}
}
