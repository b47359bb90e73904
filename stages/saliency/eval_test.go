package saliency

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
)

func gray(w, h int, pix ...uint8) *imaging.Gray { return &imaging.Gray{W: w, H: h, Pix: pix} }

func TestAccumulatorHandComputed(t *testing.T) {
	var a Accumulator
	// Image 1: GT fg at pixels 0,1 (class 1 and class 3), bg at 2, ignore at 3.
	// S = 255, 51, 102, 0 (the ignored pixel never counts).
	if err := a.Add(gray(2, 2, 255, 51, 102, 0), gray(2, 2, 1, 3, 0, 255)); err != nil {
		t.Fatal(err)
	}
	// Image 2: no foreground: counts in MAE only. S = 0, 255.
	if err := a.Add(gray(2, 1, 0, 255), gray(2, 1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	s := a.Scores()
	// MAE image 1: (0 + 204/255 + 102/255)/3 = 0.4; image 2: 0.5.
	if s.Images != 2 || s.NoForeground != 1 || math.Abs(s.MAE-0.45) > 1e-12 {
		t.Errorf("scores %+v, want MAE 0.45 over 2 images, 1 without foreground", s)
	}
	// Thresholds: t <= 51 predicts {0,1,2}: P 2/3, R 1, F = 1.3·(2/3)/(0.3·2/3+1) = 0.7222;
	// 52..102 predicts {0,2}: P 1/2, R 1/2, F 0.5; 103..255 predicts {0}: P 1, R 1/2,
	// F = 1.3·0.5/(0.3+0.5) = 0.8125 (the max, first reached at t = 103).
	if math.Abs(s.MaxF-0.8125) > 1e-12 || s.Threshold != 103 || s.Precision != 1 || s.Recall != 0.5 {
		t.Errorf("scores %+v, want max F 0.8125 at threshold 103 (P 1, R 0.5)", s)
	}
	if err := a.Add(gray(1, 1, 0), gray(2, 1, 0, 0)); err == nil {
		t.Error("size mismatch accepted")
	}
}

func TestEvaluateReportsMissingMaps(t *testing.T) {
	f := newFixture(t, 3)
	dir := t.TempDir()
	writeFile(t, mapPath(dir, f.items[1].ID), grayPNG(t, 104, 72, 0))
	writeFile(t, mapPath(dir, f.items[2].ID), grayPNG(t, 10, 10, 0))
	_, err := Evaluate(context.Background(), f.items, dir, 0)
	var list *badinput.List
	if !errors.As(err, &list) || len(list.Errs) != 2 || list.Errs[0].Path != mapPath(dir, f.items[0].ID) ||
		list.Errs[1].Path != mapPath(dir, f.items[2].ID) || list.Errs[1].Field != "size" {
		t.Fatalf("error %v, want the missing and the mis-sized map", err)
	}
	// A perfect map (mask foreground → 255) scores MAE 0 and max F 1.
	perfect := t.TempDir()
	for _, it := range f.items {
		mask, err := data.DecodeMask(it.MaskPath)
		if err != nil {
			t.Fatal(err)
		}
		g := imaging.NewGray(mask.W, mask.H)
		for i, v := range mask.Pix {
			if v == 1 {
				g.Pix[i] = 255
			}
		}
		if _, err := writeMap(data.NewPNGEncoder(), filepath.Join(perfect, it.ID+".png"), it.ID, g); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Evaluate(context.Background(), f.items, perfect, 0)
	if err != nil || s.MAE != 0 || s.MaxF != 1 || s.Images != 3 {
		t.Errorf("perfect maps: %+v, %v", s, err)
	}
}
