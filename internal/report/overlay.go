package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"

	"github.com/l2g/l2g/internal/camio"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/labelio"
)

// overlayTable is a grid of images: a header row and one row per image.
type overlayTable struct {
	Header []string
	Rows   []overlayRow
}

type overlayRow struct {
	ID    string
	Cells []template.URL // data: URLs of PNGs
}

// branchOverlays shows the first Images images of the eval list that have
// CAMs: the image, its ground truth, and for each branch the CAM heat map
// and the pseudo-label.
func branchOverlays(ctx context.Context, in Input) (*overlayTable, error) {
	if len(in.Branches) == 0 || in.EvalList == "" {
		return nil, nil
	}
	split, err := data.Open(ctx, data.Spec{Root: in.DataRoot, Kind: in.Kind, List: in.EvalList})
	if err != nil {
		return nil, err
	}
	// The images: the first ones of the first branch's CAMs that the eval
	// list has a mask for.
	first, err := readCAMs(ctx, in.Branches[0].CAMs, func(id string) bool {
		i, ok := split.Lookup(id)
		return ok && split.Items[i].MaskPath != ""
	}, in.Images)
	if err != nil {
		return nil, err
	}
	t := &overlayTable{Header: []string{"image", "ground truth"}}
	for _, b := range in.Branches {
		t.Header = append(t.Header, "CAM "+b.Mode, "pseudo-label "+b.Mode)
	}
	camsByBranch := []map[string]*camio.Record{first}
	labels := make([]*labelio.Reader, len(in.Branches))
	for i, b := range in.Branches {
		if i > 0 {
			m, err := readCAMs(ctx, b.CAMs, func(id string) bool { _, ok := first[id]; return ok }, len(first))
			if err != nil {
				return nil, err
			}
			camsByBranch = append(camsByBranch, m)
		}
		if labels[i], err = labelio.Open(b.Labels); err != nil {
			return nil, err
		}
		defer labels[i].Close()
	}
	for _, it := range split.Items {
		if len(t.Rows) == len(first) {
			break
		}
		if first[it.ID] == nil {
			continue
		}
		img, gt, err := imageAndMask(it)
		if err != nil {
			return nil, err
		}
		r := overlayRow{ID: it.ID, Cells: []template.URL{pngURL(img), pngURL(blendLabels(img, gt.Pix))}}
		for i := range in.Branches {
			r.Cells = append(r.Cells, pngURL(heat(img, camsByBranch[i][it.ID])))
			rec, err := labels[i].Get(ctx, it.ID)
			if err != nil {
				return nil, err
			}
			r.Cells = append(r.Cells, pngURL(blendLabels(img, rec.Mask)))
		}
		t.Rows = append(t.Rows, r)
	}
	return t, nil
}

// segOverlays shows the first Images images of the val list with their
// ground truth and the segmentation net's prediction.
func segOverlays(ctx context.Context, in Input) (*overlayTable, error) {
	if in.Seg.Pred == "" || in.ValList == "" {
		return nil, nil
	}
	split, err := data.Open(ctx, data.Spec{Root: in.DataRoot, Kind: in.Kind, List: in.ValList})
	if err != nil {
		return nil, err
	}
	pred, err := labelio.Open(in.Seg.Pred)
	if err != nil {
		return nil, err
	}
	defer pred.Close()
	t := &overlayTable{Header: []string{"image", "ground truth", "segmentation (" + in.Seg.Mode + " pseudo-labels)"}}
	for _, it := range split.Items {
		if len(t.Rows) == in.Images {
			break
		}
		if it.MaskPath == "" {
			continue
		}
		rec, err := pred.Get(ctx, it.ID)
		if err != nil {
			return nil, err
		}
		img, gt, err := imageAndMask(it)
		if err != nil {
			return nil, err
		}
		t.Rows = append(t.Rows, overlayRow{ID: it.ID, Cells: []template.URL{
			pngURL(img), pngURL(blendLabels(img, gt.Pix)), pngURL(blendLabels(img, rec.Mask)),
		}})
	}
	return t, nil
}

// readCAMs reads up to n records of a CAM dataset whose id passes keep.
func readCAMs(ctx context.Context, path string, keep func(string) bool, n int) (map[string]*camio.Record, error) {
	r, err := camio.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := map[string]*camio.Record{}
	for len(out) < n {
		rec, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if keep(rec.ID) {
			out[rec.ID] = rec
		}
	}
	return out, nil
}

func imageAndMask(it data.Item) (*imaging.RGB, *imaging.Gray, error) {
	img, err := data.DecodeImage(it.ImagePath)
	if err != nil {
		return nil, nil, err
	}
	gt, err := data.DecodeMask(it.MaskPath)
	if err != nil {
		return nil, nil, err
	}
	if gt.W != img.W || gt.H != img.H {
		return nil, nil, fmt.Errorf("report: %s: mask %dx%d, image %dx%d", it.ID, gt.W, gt.H, img.W, img.H)
	}
	return img, gt, nil
}

// blendLabels paints each labelled pixel half in its palette colour;
// background (0) stays the image, dimmed, and ignore (255) is white.
func blendLabels(img *imaging.RGB, mask []uint8) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, img.W, img.H))
	for i, l := range mask {
		r, g, b := img.Pix[3*i], img.Pix[3*i+1], img.Pix[3*i+2]
		var c color.RGBA
		switch {
		case l == 0:
			c = color.RGBA{r / 2, g / 2, b / 2, 255}
		case l == data.IgnoreLabel:
			c = color.RGBA{255, 255, 255, 255}
		default:
			pr, pg, pb := data.VOCColor(l)
			c = color.RGBA{uint8((int(r) + int(pr)) / 2), uint8((int(g) + int(pg)) / 2), uint8((int(b) + int(pb)) / 2), 255}
		}
		out.SetRGBA(i%img.W, i/img.W, c)
	}
	return out
}

// heat overlays the maximum over the record's class maps in a blue–red
// colour map on the image.
func heat(img *imaging.RGB, rec *camio.Record) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, img.W, img.H))
	n := img.W * img.H
	peak := make([]float32, n)
	if rec != nil && rec.W == img.W && rec.H == img.H {
		var plane []float32
		for p := range rec.ClassIDs {
			plane = rec.Plane(p, plane)
			for i, v := range plane {
				peak[i] = max(peak[i], v)
			}
		}
	}
	for i := range n {
		hr, hg, hb := jet(float64(peak[i]))
		r, g, b := img.Pix[3*i], img.Pix[3*i+1], img.Pix[3*i+2]
		out.SetRGBA(i%img.W, i/img.W, color.RGBA{
			uint8((int(r) + int(hr)) / 2), uint8((int(g) + int(hg)) / 2), uint8((int(b) + int(hb)) / 2), 255})
	}
	return out
}

// jet maps [0, 1] to the jet colour map.
func jet(v float64) (r, g, b uint8) {
	v = math.Max(0, math.Min(1, v))
	ch := func(x float64) uint8 { return uint8(255 * math.Max(0, math.Min(1, x))) }
	return ch(1.5 - math.Abs(4*v-3)), ch(1.5 - math.Abs(4*v-2)), ch(1.5 - math.Abs(4*v-1))
}

// pngURL encodes an image as a data: URL.
func pngURL(img any) template.URL {
	var m image.Image
	switch v := img.(type) {
	case *imaging.RGB:
		rgba := image.NewRGBA(image.Rect(0, 0, v.W, v.H))
		for i := range v.W * v.H {
			rgba.SetRGBA(i%v.W, i/v.W, color.RGBA{v.Pix[3*i], v.Pix[3*i+1], v.Pix[3*i+2], 255})
		}
		m = rgba
	case image.Image:
		m = v
	default:
		return ""
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		return ""
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()))
}
