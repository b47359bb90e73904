package camio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/badinput"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/schemas"
	"github.com/l2g/l2g/stages"
)

// PNGPath is the reference's file for class k of image id: dir/<id>_<k>.png.
func PNGPath(dir, id string, k int) string {
	return filepath.Join(dir, id+"_"+strconv.Itoa(k)+".png")
}

// WritePNGs writes every plane of rec as the 8-bit gray PNG the reference
// saves (float16 planes are quantized as for uint8 files), each atomically.
func WritePNGs(dir string, rec *Record) error {
	n := rec.NumPixels()
	g := &imaging.Gray{W: rec.W, H: rec.H}
	var plane []float32
	var quantized []byte
	if rec.DType != schemas.CAMUint8 {
		quantized = make([]byte, n)
	}
	for p, k := range rec.ClassIDs {
		if quantized == nil {
			g.Pix = rec.Data[p*n : (p+1)*n]
		} else {
			plane = rec.Plane(p, plane)
			if err := quantize(quantized, plane, schemas.CAMUint8); err != nil {
				return fmt.Errorf("image %q class %d: %w", rec.ID, k, err)
			}
			g.Pix = quantized
		}
		if err := artifacts.WriteWith(PNGPath(dir, rec.ID, k), func(w io.Writer) error {
			return data.EncodeGrayPNG(w, g)
		}); err != nil {
			return err
		}
	}
	return nil
}

// ReadPNGs reads dir/<id>_<k>.png for every k of classIDs (the present
// classes, as the reference saved them) into a uint8 record. All planes
// must be 8-bit gray PNGs of one size; errors are *badinput.Error naming
// the file.
func ReadPNGs(dir, id string, classIDs []int) (*Record, error) {
	rec := &Record{ID: id, DType: schemas.CAMUint8, ClassIDs: append([]int(nil), classIDs...)}
	for p, k := range classIDs {
		path := PNGPath(dir, id, k)
		g, err := data.DecodeSaliency(path) // CAM PNGs are 8-bit gray, like saliency maps
		if err != nil {
			return nil, fmt.Errorf("CAM of class %d: %w", k, err)
		}
		if p == 0 {
			rec.H, rec.W = g.H, g.W
			rec.Data = make([]byte, 0, len(classIDs)*g.W*g.H)
		} else if g.W != rec.W || g.H != rec.H {
			return nil, badinput.New(path, "size", "%dx%d, but %s is %dx%d",
				g.W, g.H, PNGPath(dir, id, classIDs[0]), rec.W, rec.H)
		}
		rec.Data = append(rec.Data, g.Pix...)
	}
	return rec, nil
}

// ImportPNGs converts the reference's CAM PNGs of items (their Labels are
// the present classes) into a uint8 CAM dataset at path, bit-exactly. PNGs
// are decoded on workers goroutines (0 = all cores) in list order.
func ImportPNGs(ctx context.Context, dir string, items []data.Item, path string, meta schemas.CAMMeta, workers int, progress stages.ProgressFunc) (int, error) {
	meta.DType = schemas.CAMUint8
	w, err := Create(path, meta)
	if err != nil {
		return 0, err
	}
	defer w.Abort()
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	pf := data.Prefetch(ctx, order, data.PrefetchOptions{Workers: workers}, func(_ context.Context, i int) (*Record, error) {
		return ReadPNGs(dir, items[i].ID, items[i].Labels)
	})
	defer pf.Close()
	n := 0
	for {
		r, err := pf.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("import CAM PNGs from %s: %w", dir, err)
		}
		if err := w.AppendRecord(r.Value); err != nil {
			return 0, err
		}
		n++
		progress.Report(stages.Progress{Stage: "import-cams", Iteration: n, Total: len(items)})
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return n, nil
}
