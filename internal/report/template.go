package report

import "html/template"

var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>l2g run {{.RunID}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table.scores { border-collapse: collapse; } table.scores td, table.scores th { padding: 4px 12px; border-bottom: 1px solid #ddd; text-align: right; }
table.scores td:first-child, table.scores th:first-child { text-align: left; }
.chart { margin: 6px 12px 6px 0; background: #fff; } .chart .title { font-weight: 600; font-size: 13px; }
.chart .tick { font-size: 11px; fill: #444; } .chart .grid { stroke: #eee; } .chart .axis { stroke: #888; }
table.overlays td { padding: 2px; text-align: center; } table.overlays th { font-weight: 500; font-size: 12px; padding: 2px 4px; }
table.overlays img { width: 144px; image-rendering: pixelated; }
.small { color: #666; font-size: 12px; }
</style></head><body>
<h1>l2g run {{.RunID}}</h1>
<p class="small">{{.Dir}} — finished in {{.Took}}; report generated {{.Generated}}</p>

<h2>Pseudo-label quality by training mode</h2>
<table class="scores">
<tr><th>training mode</th><th>CAM mIoU %</th><th>best threshold</th><th>pseudo-label mIoU %</th></tr>
{{range .Rows}}<tr><td>{{.Name}} ({{.Mode}})</td><td>{{.CAM}}</td><td>{{.Thr}}</td><td>{{.Labels}}</td></tr>
{{end}}</table>
<p>Segmentation net trained on the {{.Seg.Mode}} pseudo-labels: val mIoU <b>{{.SegMIoU}} %</b>.</p>
<p class="small">CAM and pseudo-label mIoU: mean IoU over all classes (background included) on the eval list, as the reference's evaluate_mthr_voc.py; the CAM column is the best background threshold of the sweep. Segmentation: mean IoU over the classes present in the val ground truth (deeplab-pytorch).</p>

<h2>Loss curves</h2>
{{range .Charts}}{{.}}{{end}}

<h2>Per-class IoU</h2>
{{.Bars}}

{{with .Overlays}}<h2>CAMs and pseudo-labels</h2>
<table class="overlays"><tr><th>id</th>{{range .Header}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr><td class="small">{{.ID}}</td>{{range .Cells}}<td><img src="{{.}}" alt=""></td>{{end}}</tr>
{{end}}</table>{{end}}

{{with .SegOverlays}}<h2>Segmentation on val</h2>
<table class="overlays"><tr><th>id</th>{{range .Header}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr><td class="small">{{.ID}}</td>{{range .Cells}}<td><img src="{{.}}" alt=""></td>{{end}}</tr>
{{end}}</table>{{end}}
</body></html>
`))
