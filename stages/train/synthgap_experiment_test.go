//go:build experiment

// The synthetic-data experiment of the training stage: CAM versus L2G
// pseudo-label mIoU over several seeds (SYNTH-RECIPE.md). It takes tens of
// CPU minutes, so it sits behind a build tag:
//
//	SYNTHGAP_DESIGN=pretrain go test -tags experiment -run TestSynthGap -v -timeout 0 ./stages/train
//
// Settings (environment): SYNTHGAP_DIR work folder (default
// /tmp/l2g-synthgap; datasets and finished runs there are reused),
// SYNTHGAP_DESIGN scratch | pretrain | pretrain-head (the pre-trained
// head kept too), SYNTHGAP_SEEDS (0,1,2), SYNTHGAP_DATA (a fixed training
// set for every seed; default: set s for seed s),
// SYNTHGAP_METHODS (cam,l2g; also local, l2g-shape), SYNTHGAP_ITERS (1000),
// SYNTHGAP_PRETRAIN_ITERS (1000), SYNTHGAP_PRETRAIN_LR, SYNTHGAP_THREADS
// (2), SYNTHGAP_LR, SYNTHGAP_LOCAL (scheme:n:crop, default demo.yaml's),
// SYNTHGAP_BGTHR (loss.bg_threshold), SYNTHGAP_SIZE and SYNTHGAP_GEOM (the
// data: image side, and JSON fields over synth.DefaultGeometry, e.g.
// {"object_scale":{"min":0.6,"max":1.6}}; give each its own SYNTHGAP_DIR),
// SYNTHGAP_PRETRAIN_CLASSES (a broader pre-training task) and
// SYNTHGAP_SCALES (inference scales, a diagnostic; default 0.5,1,1.5,2).
// docs/train.md ("The synthetic-data study") has the results.
//
// The multi-scale CAM inference, thresholded argmax and mIoU below are a
// minimal version of stages/cam and the evaluation stage (spec §5–§7),
// kept here so that the experiment needs nothing but the trained weights.
package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/l2g/l2g/internal/augment"
	"github.com/l2g/l2g/internal/data"
	"github.com/l2g/l2g/internal/imaging"
	"github.com/l2g/l2g/internal/nn"
	"github.com/l2g/l2g/internal/segmetrics"
	"github.com/l2g/l2g/internal/synth"
	"github.com/l2g/l2g/internal/torch"
	"github.com/l2g/l2g/stages"
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envInt(t *testing.T, k string, def int) int {
	v, err := strconv.Atoi(envOr(k, strconv.Itoa(def)))
	if err != nil {
		t.Fatalf("%s: %v", k, err)
	}
	return v
}

// gapThresholds are the background thresholds swept (0.10 … 0.50).
var gapThresholds = []float64{0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50}

type gapResult struct {
	Method  string    `json:"method"`
	Seed    int       `json:"seed"`
	MIoU    []float64 `json:"miou"` // per threshold, %
	Seconds float64   `json:"train_seconds"`
	Final   map[string]float64
}

// ensureSynth generates a dataset once (synth.json marks it complete).
func ensureSynth(t *testing.T, dir string, o synth.Options) {
	if _, err := os.Stat(filepath.Join(dir, synth.MetaFile)); err == nil {
		return
	}
	start := time.Now()
	if _, err := synth.Generate(context.Background(), dir, o); err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %s in %.0f s", dir, time.Since(start).Seconds())
}

func TestSynthGap(t *testing.T) {
	root := envOr("SYNTHGAP_DIR", "/tmp/l2g-synthgap")
	design := envOr("SYNTHGAP_DESIGN", "pretrain")
	iters := envInt(t, "SYNTHGAP_ITERS", 1000)
	threads := envInt(t, "SYNTHGAP_THREADS", 2)
	base, err := LoadConfig("../../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base.Threads, base.Workers = threads, 2
	base.MaxIterations = iters
	base.Epochs = (iters*base.BatchSize + 3999) / 4000
	base.CheckpointEvery, base.KeepCheckpoints = 0, 1
	if v := os.Getenv("SYNTHGAP_LR"); v != "" {
		if base.Optim.LR, err = strconv.ParseFloat(v, 64); err != nil {
			t.Fatal(err)
		}
	}
	if v := os.Getenv("SYNTHGAP_LOCAL"); v != "" {
		// scheme:n:crop, e.g. voc:6:68 (4 corners + 2 random, the VOC scheme)
		f := strings.Split(v, ":")
		if len(f) != 3 {
			t.Fatalf("SYNTHGAP_LOCAL %q: want scheme:n:crop", v)
		}
		base.Local.Scheme = f[0]
		if base.Local.N, err = strconv.Atoi(f[1]); err != nil {
			t.Fatal(err)
		}
		if base.Local.Crop, err = strconv.Atoi(f[2]); err != nil {
			t.Fatal(err)
		}
		if err := base.Validate("SYNTHGAP_LOCAL"); err != nil {
			t.Fatal(err)
		}
	}
	if v := os.Getenv("SYNTHGAP_BGTHR"); v != "" {
		if base.Loss.BgThreshold, err = strconv.ParseFloat(v, 64); err != nil {
			t.Fatal(err)
		}
	}
	// SYNTHGAP_SIZE and SYNTHGAP_GEOM (JSON over synth.DefaultGeometry at
	// that size) change the data; use a SYNTHGAP_DIR of its own for each.
	size := envInt(t, "SYNTHGAP_SIZE", 96)
	geom := synth.DefaultGeometry(size, size, base.NumClasses)
	if v := os.Getenv("SYNTHGAP_GEOM"); v != "" {
		if err := json.Unmarshal([]byte(v), &geom); err != nil {
			t.Fatalf("SYNTHGAP_GEOM: %v", err)
		}
	}
	synthOpts := func() synth.Options {
		o := synth.DefaultOptions()
		o.Width, o.Height = size, size
		g := geom
		o.Geometry = &g
		return o
	}
	base.View.ShortSide, base.View.Size = size, size
	if err := torch.SetNumThreads(threads); err != nil {
		t.Fatal(err)
	}

	// The 300 test images are the same for every seed (generator seed
	// 99999); training images come from seed 1000 + s.
	valDir := filepath.Join(root, "data", "val")
	vo := synthOpts()
	vo.Train, vo.Val, vo.Seed, vo.Workers = 1, 300, 99999, 2
	ensureSynth(t, valDir, vo)
	val, err := data.Open(context.Background(), data.Spec{Root: valDir, List: "val_cls.txt"})
	if err != nil {
		t.Fatal(err)
	}

	var initWeights string
	if design == "pretrain" || design == "pretrain-head" {
		// Stand-in for ImageNet pre-training: a whole-image classifier
		// trained on a separate set (seed 7777); only its backbone is
		// used (init_exclude drops the head), as the reference loads
		// ImageNet weights non-strictly and draws the head at random.
		pre := filepath.Join(root, "data", "pretrain")
		po := synthOpts()
		po.Val, po.Seed, po.Workers = 0, 7777, 2
		// SYNTHGAP_PRETRAIN_CLASSES > num_classes pre-trains on a broader
		// task, as ImageNet's 1000 classes are broader than VOC's 20: K'
		// classes whose parts and hues recombine the target's.
		preK := envInt(t, "SYNTHGAP_PRETRAIN_CLASSES", base.NumClasses)
		if preK != base.NumClasses {
			pre += strconv.Itoa(preK)
			po.Classes = preK
			g := synth.DefaultGeometry(size, size, preK)
			if v := os.Getenv("SYNTHGAP_GEOM"); v != "" {
				if err := json.Unmarshal([]byte(v), &g); err != nil {
					t.Fatalf("SYNTHGAP_GEOM: %v", err)
				}
			}
			po.Geometry = &g
		}
		ensureSynth(t, pre, po)
		preOut := filepath.Join(root, "pretrain", "run")
		if preK != base.NumClasses {
			preOut += strconv.Itoa(preK)
		}
		initWeights = filepath.Join(preOut, GlobalFile)
		if _, err := os.Stat(initWeights); err != nil {
			cfg := base
			cfg.Mode = ModeCAM
			cfg.MaxIterations = envInt(t, "SYNTHGAP_PRETRAIN_ITERS", 1000)
			cfg.Epochs = (cfg.MaxIterations*cfg.BatchSize + 3999) / 4000
			cfg.Seed = 7777
			cfg.NumClasses = preK
			if v := os.Getenv("SYNTHGAP_PRETRAIN_LR"); v != "" {
				if cfg.Optim.LR, err = strconv.ParseFloat(v, 64); err != nil {
					t.Fatal(err)
				}
			}
			out, err := Run(context.Background(), cfg, Inputs{DataRoot: pre, OutDir: preOut}, logEvery(t, "pretrain", 100))
			if err != nil {
				t.Fatal(err)
			}
			if preK != base.NumClasses {
				t.Logf("pretrain (%d classes): %.0f s, final losses %v", preK, out.Seconds, out.FinalLosses)
			} else {
				miou, err := pseudoLabelMIoU(cfg, out.Checkpoint, val)
				if err != nil {
					t.Fatal(err)
				}
				best, bi := bestOf(miou)
				t.Logf("pretrain: %.0f s, final losses %v; its own CAMs: best %.1f (thr %.2f), at 0.25 %.1f",
					out.Seconds, out.FinalLosses, best, gapThresholds[bi], miou[3])
			}
		}
		if design == "pretrain" {
			base.InitExclude = []string{"fc8.", "f8_3.", "f8_4.", "f9."}
		}
	} else if design != "scratch" {
		t.Fatalf("SYNTHGAP_DESIGN %q: want scratch, pretrain or pretrain-head", design)
	}

	var seeds []int
	for _, f := range strings.Split(envOr("SYNTHGAP_SEEDS", "0,1,2"), ",") {
		s, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, s)
	}
	methods := strings.Split(envOr("SYNTHGAP_METHODS", "cam,l2g"), ",")
	results := map[string][]gapResult{}
	for _, seed := range seeds {
		// SYNTHGAP_DATA fixes the training set (its index) while the seed
		// varies the rest: it separates data from initialisation.
		dataIdx, fixed := seed, ""
		if v := os.Getenv("SYNTHGAP_DATA"); v != "" {
			if dataIdx, err = strconv.Atoi(v); err != nil {
				t.Fatalf("SYNTHGAP_DATA: %v", err)
			}
			fixed = fmt.Sprintf("_data%d", dataIdx)
		}
		trainDir := filepath.Join(root, "data", fmt.Sprintf("train%d", dataIdx))
		to := synthOpts()
		to.Val, to.Seed, to.Workers = 0, uint64(1000+dataIdx), 2
		ensureSynth(t, trainDir, to)
		for _, m := range methods {
			dir := trainDir
			if Mode(m) == ModeL2GShape {
				// The same images (saliency has its own random stream) with
				// the generator's crude saliency: blurred ground truth + noise.
				dir += "-sal"
				so := to
				so.Saliency = true
				ensureSynth(t, dir, so)
			}
			// The local-crop settings name L2G runs only: CAM runs, which
			// ignore them, are shared between crop variants.
			variant := ""
			if Mode(m).usesCrops() {
				variant = fmt.Sprintf("_%s%dx%d", base.Local.Scheme, base.Local.N, base.Local.Crop)
			}
			if v := os.Getenv("SYNTHGAP_BGTHR"); v != "" && Mode(m).twoNets() {
				variant += "_bgthr" + v
			}
			runDir := filepath.Join(root, design, fmt.Sprintf("%s%s_iters%d_seed%d%s", m, variant, iters, seed, fixed))
			res, err := runGap(t, base, Mode(m), seed, dir, runDir, initWeights, val)
			if err != nil {
				t.Fatal(err)
			}
			results[m] = append(results[m], res)
			best, bi := bestOf(res.MIoU)
			t.Logf("%s seed %d: best %.1f (thr %.2f), at 0.25 %.1f, train %.0f s", m, seed, best, gapThresholds[bi], res.MIoU[3], res.Seconds)
		}
	}
	report(t, design, iters, base.Local, methods, results)
}

// logEvery reports the mean losses of every block of iterations.
func logEvery(t *testing.T, name string, every int) stages.ProgressFunc {
	sum := map[string]float64{}
	n := 0
	return func(p stages.Progress) {
		if p.Iteration == 0 {
			return
		}
		for k, v := range p.Losses {
			sum[k] += v
		}
		n++
		if p.Iteration%every == 0 || p.Iteration == p.Total {
			var b strings.Builder
			for _, k := range []string{LossTotal, LossCls, LossKD, LossClsLocal, LossClsGlobal} {
				if v, ok := sum[k]; ok {
					fmt.Fprintf(&b, " %s %.4f", k, v/float64(n))
				}
			}
			t.Logf("%s %d/%d mean%s, %.1f img/s", name, p.Iteration, p.Total, b.String(), p.ItemsPerS)
			clear(sum)
			n = 0
		}
	}
}

func runGap(t *testing.T, base Config, mode Mode, seed int, trainDir, runDir, initWeights string, val *data.Split) (gapResult, error) {
	resPath := filepath.Join(runDir, "result.json")
	var res gapResult
	if b, err := os.ReadFile(resPath); err == nil {
		return res, json.Unmarshal(b, &res)
	}
	cfg := base
	cfg.Mode = mode
	cfg.Seed = uint64(seed)
	out, err := Run(context.Background(), cfg, Inputs{DataRoot: trainDir, OutDir: runDir, InitWeights: initWeights},
		logEvery(t, fmt.Sprintf("%s seed %d", mode, seed), 100))
	if err != nil {
		return res, err
	}
	miou, err := pseudoLabelMIoU(cfg, out.Checkpoint, val)
	if err != nil {
		return res, err
	}
	res = gapResult{Method: string(mode), Seed: seed, MIoU: miou, Seconds: out.Seconds, Final: out.FinalLosses}
	b, _ := json.MarshalIndent(res, "", "  ")
	return res, os.WriteFile(resPath, b, 0o644)
}

func bestOf(v []float64) (float64, int) {
	bi := 0
	for i := range v {
		if v[i] > v[bi] {
			bi = i
		}
	}
	return v[bi], bi
}

func meanSD(v []float64) (float64, float64) {
	var m float64
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	if len(v) < 2 {
		return m, math.NaN()
	}
	var ss float64
	for _, x := range v {
		ss += (x - m) * (x - m)
	}
	return m, math.Sqrt(ss / float64(len(v)-1))
}

// report prints the table of best and at-0.25 mIoU per seed, mean ± sample
// s.d., and the per-seed differences of every other method minus the first.
func report(t *testing.T, design string, iters int, local LocalConfig, methods []string, results map[string][]gapResult) {
	var b strings.Builder
	fmt.Fprintf(&b, "\ndesign %s, %d iterations, crops %s %d×%d px\n| method | metric | per seed | mean ± s.d. |\n|---|---|---|---|\n", design, iters, local.Scheme, local.N, local.Crop)
	metric := func(r gapResult, best bool) float64 {
		if best {
			v, _ := bestOf(r.MIoU)
			return v
		}
		return r.MIoU[3]
	}
	for _, best := range []bool{true, false} {
		name := "at thr 0.25"
		if best {
			name = "best thr"
		}
		for _, m := range methods {
			var v []float64
			var cells []string
			for _, r := range results[m] {
				x := metric(r, best)
				v = append(v, x)
				cells = append(cells, fmt.Sprintf("%.1f", x))
			}
			mu, sd := meanSD(v)
			fmt.Fprintf(&b, "| %s | %s | %s | %.1f ± %.1f |\n", m, name, strings.Join(cells, " / "), mu, sd)
		}
		for _, m := range methods[1:] {
			var d []float64
			var cells []string
			for i := range results[methods[0]] {
				x := metric(results[m][i], best) - metric(results[methods[0]][i], best)
				d = append(d, x)
				cells = append(cells, fmt.Sprintf("%+.1f", x))
			}
			mu, sd := meanSD(d)
			fmt.Fprintf(&b, "| %s − %s | %s | %s | %+.1f ± %.1f |\n", m, methods[0], name, strings.Join(cells, " / "), mu, sd)
		}
	}
	t.Log(b.String())
}

// pseudoLabelMIoU loads the trained global net and scores its pseudo-labels
// on val at every threshold: multi-scale CAMs (spec §5), argmax over
// [threshold, CAMs of the labelled classes] (§6), mIoU over all classes with
// background (§7). Values in %.
func pseudoLabelMIoU(cfg Config, weights string, val *data.Split) ([]float64, error) {
	return pseudoLabelMIoUOpt(cfg, weights, val, false)
}

// pseudoLabelMIoUOpt is pseudoLabelMIoU; centered subtracts, before
// anything else, each pixel's mean over the K featmap channels (a
// diagnostic, see TestSynthGapOffset).
func pseudoLabelMIoUOpt(cfg Config, weights string, val *data.Split, centered bool) ([]float64, error) {
	sc, err := pseudoLabelScores(cfg, weights, val, centered)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(sc))
	for i, c := range sc {
		out[i] = 100 * float64(c.MIoUCAM)
	}
	return out, nil
}

// pseudoLabelScores is pseudoLabelMIoUOpt's work: the scores at every
// threshold.
func pseudoLabelScores(cfg Config, weights string, val *data.Split, centered bool) ([]segmetrics.Scores, error) {
	net, err := loadNet(cfg, weights)
	if err != nil {
		return nil, err
	}
	defer net.Store().Close()
	confs := make([]*segmetrics.Confusion, len(gapThresholds))
	for i := range confs {
		confs[i] = segmetrics.New(cfg.NumClasses + 1)
	}
	for i := range val.Items {
		smp, err := val.Load(context.Background(), i)
		if err != nil {
			return nil, err
		}
		cams, err := multiScaleCAM(net, smp.Image, cfg.norm(), centered)
		if err != nil {
			return nil, err
		}
		n := smp.Image.W * smp.Image.H
		pred := make([]uint8, n)
		for ti, thr := range gapThresholds {
			for p := range n {
				best, label := float32(thr), uint8(0)
				for _, k := range smp.Labels {
					if v := cams[k*n+p]; v > best {
						best, label = v, uint8(k+1)
					}
				}
				pred[p] = label
			}
			if err := confs[ti].Add(smp.Mask.Pix, pred); err != nil {
				return nil, err
			}
		}
	}
	out := make([]segmetrics.Scores, len(confs))
	for i, c := range confs {
		out[i] = c.Scores()
	}
	return out, nil
}

// multiScaleCAM returns the C foreground CAMs (C×H×W) of img: the featmap
// at scales 0.5, 1, 1.5, 2 and their flips, bicubic-upsampled to the image
// size, averaged, clipped at 0 and divided by each channel's max + 1e-8.
func multiScaleCAM(net nn.Classifier, img *imaging.RGB, norm augment.Norm, centered bool) ([]float32, error) {
	scales := augment.DefaultTestScales()
	if v := os.Getenv("SYNTHGAP_SCALES"); v != "" { // a diagnostic: e.g. "1"
		scales = nil
		for _, f := range strings.Split(v, ",") {
			x, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return nil, fmt.Errorf("SYNTHGAP_SCALES: %w", err)
			}
			scales = append(scales, x)
		}
	}
	ins, err := augment.MultiScale(img, scales, norm)
	if err != nil {
		return nil, err
	}
	s := torch.NewNoGradScope()
	defer s.Close()
	var sum *torch.Tensor
	for _, in := range ins {
		fm, _ := net.Forward(s, s.FromFloat32(in.Image, 1, 3, int64(in.H), int64(in.W)), false)
		if centered {
			fm = s.Sub(fm, s.Mean(fm, []int64{1}, true))
		}
		up := s.Interpolate(fm, int64(img.H), int64(img.W), torch.Bicubic, false)
		if in.Flipped {
			up = s.Flip(up, 3)
		}
		if sum == nil {
			sum = up
		} else {
			sum = s.Add(sum, up)
		}
	}
	cam := s.Relu(s.DivScalar(sum, float64(len(ins))))
	cam = s.Div(cam, s.AddScalar(s.Amax(cam, []int64{2, 3}, true), 1e-8))
	fg := s.Contiguous(s.Narrow(cam, 1, 0, int64(net.NumClasses())))
	if err := s.Err(); err != nil {
		return nil, err
	}
	return fg.Float32s()
}

// TestSynthGapOffset scores every trained global net under SYNTHGAP_DIR's
// design folder twice: with the CAMs as the method defines them, and with
// each pixel's mean over the K channels subtracted first. The transfer
// loss sees the global map only through a softmax over the K channels, so
// it leaves that per-pixel common offset untrained (its gradient sums to
// zero over the channels); a large difference between the two scores
// shows the offset, set by the random head, in the CAMs.
func TestSynthGapOffset(t *testing.T) {
	base, val, runs := savedRuns(t, "*", GlobalFile)
	for _, w := range runs {
		raw, err := pseudoLabelMIoUOpt(base, w, val, false)
		if err != nil {
			t.Fatal(err)
		}
		cen, err := pseudoLabelMIoUOpt(base, w, val, true)
		if err != nil {
			t.Fatal(err)
		}
		rb, ri := bestOf(raw)
		cb, ci := bestOf(cen)
		t.Logf("%s: CAM best %.1f (thr %.2f); centered best %.1f (thr %.2f)", filepath.Base(filepath.Dir(w)), rb, gapThresholds[ri], cb, gapThresholds[ci])
	}
}

// savedRuns is the setup of the diagnostics that rescore finished runs: the
// libtorch threads, demo.yaml, the val set, and the weight files named
// file in the runs under SYNTHGAP_DIR/SYNTHGAP_DESIGN that match
// SYNTHGAP_RUNS (default defRuns).
func savedRuns(t *testing.T, defRuns, file string) (Config, *data.Split, []string) {
	t.Helper()
	root := envOr("SYNTHGAP_DIR", "/tmp/l2g-synthgap")
	if err := torch.SetNumThreads(envInt(t, "SYNTHGAP_THREADS", 2)); err != nil {
		t.Fatal(err)
	}
	base, err := LoadConfig("../../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	val, err := data.Open(context.Background(), data.Spec{Root: filepath.Join(root, "data", "val"), List: "val_cls.txt"})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := filepath.Glob(filepath.Join(root, envOr("SYNTHGAP_DESIGN", "pretrain"), envOr("SYNTHGAP_RUNS", defRuns), file))
	if err != nil {
		t.Fatal(err)
	}
	return base, val, runs
}

// loadNet builds cfg's classifier on the CPU and loads weights into it;
// the caller closes its Store.
func loadNet(cfg Config, weights string) (nn.Classifier, error) {
	net, err := nn.NewClassifier(cfg.Arch, cfg.NumClasses, torch.CPU())
	if err != nil {
		return nil, err
	}
	if _, err := net.Store().Load(weights); err != nil {
		net.Store().Close()
		return nil, err
	}
	return net, nil
}
