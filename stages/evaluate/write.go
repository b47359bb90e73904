package evaluate

import (
	"encoding/json"
	"math"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/l2g/l2g/internal/artifacts"
	"github.com/l2g/l2g/internal/pqio"
	"github.com/l2g/l2g/internal/segmetrics"
	"github.com/l2g/l2g/schemas"
)

func nan() float64 { return math.NaN() }

func writeJSON(path string, out Outputs) error {
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return artifacts.WriteFile(path, append(b, '\n'))
}

// writeParquet writes one row per result (schemas.Eval).
func writeParquet(path string, out Outputs) error {
	s, err := schemas.Eval(out.ClassNames)
	if err != nil {
		return pqio.SchemaError(path, err)
	}
	w, err := pqio.Create(path, s)
	if err != nil {
		return err
	}
	defer w.Abort()
	b := array.NewRecordBuilder(memory.DefaultAllocator, s)
	defer b.Release()
	metric := func(fb array.Builder, m segmetrics.Metric) {
		f := fb.(*array.Float64Builder)
		if math.IsNaN(float64(m)) {
			f.AppendNull()
		} else {
			f.Append(float64(m))
		}
	}
	metrics := func(fb array.Builder, ms []segmetrics.Metric) {
		lb := fb.(*array.ListBuilder)
		lb.Append(true)
		for _, m := range ms {
			metric(lb.ValueBuilder(), m)
		}
	}
	ints := func(fb array.Builder, vs []int64) {
		lb := fb.(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Int64Builder).AppendValues(vs, nil)
	}
	for _, r := range out.Results {
		b.Field(0).(*array.StringBuilder).Append(out.Source)
		b.Field(1).(*array.StringBuilder).Append(r.Kind)
		b.Field(2).(*array.StringBuilder).Append(r.Variant)
		metric(b.Field(3), r.Threshold)
		b.Field(4).(*array.Int64Builder).Append(int64(r.Images))
		b.Field(5).(*array.Int64Builder).Append(r.Pixels)
		b.Field(6).(*array.Int64Builder).Append(r.Unlabeled)
		for i, m := range []segmetrics.Metric{r.PixelAcc, r.MeanClassAcc, r.MIoUCAM, r.MIoUSeg, r.FWIoU, r.Coverage} {
			metric(b.Field(7+i), m)
		}
		metrics(b.Field(13), r.IoU)
		metrics(b.Field(14), r.Precision)
		metrics(b.Field(15), r.Recall)
		ints(b.Field(16), r.GTPixels)
		ints(b.Field(17), r.PredPixels)
		ints(b.Field(18), r.Confusion)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		return err
	}
	return w.Commit()
}
