package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/l2g/l2g/internal/badinput"
)

// Range is a closed interval sampled uniformly.
type Range struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

func (r Range) valid(positive bool) bool {
	return r.Min <= r.Max && !math.IsNaN(r.Min) && !math.IsNaN(r.Max) && (!positive || r.Min > 0)
}

// Geometry is the drawing recipe. DefaultGeometry gives the "v3" recipe of
// SYNTH-RECIPE.md scaled to an image size; lengths are in pixels, colours in
// 0..255 units, hues in turns (0..1).
type Geometry struct {
	// Background: base colour per channel from BaseColor, plus
	// CoarseAmp × value noise on a CoarseGrid² lattice and FineAmp × value
	// noise on a FineGrid² lattice (bilinear, values in [-1,1]), scaled by a
	// per-channel gain from Gain.
	BaseColor  Range   `json:"base_color"`
	CoarseAmp  float64 `json:"coarse_amp"`
	CoarseGrid int     `json:"coarse_grid"`
	FineAmp    float64 `json:"fine_amp"`
	FineGrid   int     `json:"fine_grid"`
	Gain       Range   `json:"gain"`

	// Clutter: Clutter items coloured base colour + U[±ClutterShade] (the
	// same for all channels) + U[±ClutterTint] per channel, each a line, a
	// disc or an axis-aligned box (equally likely). v3 drew ±60 per channel,
	// which gives saturated clutter that can pass for a part; the default
	// varies mostly the shade (60) with a small tint (15), keeping clutter
	// low-saturation like the background. Shade 0, tint 60 is v3 verbatim.
	Clutter       int     `json:"clutter"`
	ClutterShade  float64 `json:"clutter_shade"`
	ClutterTint   float64 `json:"clutter_tint"`
	LineLength    Range   `json:"line_length"`
	LineHalfWidth Range   `json:"line_half_width"`
	DiscRadius    Range   `json:"disc_radius"`
	BoxHalfSide   Range   `json:"box_half_side"`
	BoxAspect     Range   `json:"box_aspect"`

	// Objects: MinObjects..MaxObjects per image, classes uniform, centres at
	// least Margin from the border and, when PlaceTries rejection draws
	// allow it, CenterSpacing apart.
	MinObjects    int     `json:"min_objects"`
	MaxObjects    int     `json:"max_objects"`
	Margin        float64 `json:"margin"`
	CenterSpacing float64 `json:"center_spacing"`
	PlaceTries    int     `json:"place_tries"`

	// Body: rotated ellipse with semi-axes a from BodyAxis and
	// b = a × BodyAspect; HSV colour with hue class/K + Normal(0, HueSpread),
	// saturation BodySat, value BodyVal; square-wave stripes of period
	// StripePeriod and amplitude ±StripeAmp, plus Normal(0, BodyNoise).
	BodyAxis     Range   `json:"body_axis"`
	BodyAspect   Range   `json:"body_aspect"`
	HueSpread    float64 `json:"hue_spread"`
	BodySat      float64 `json:"body_sat"`
	BodyVal      float64 `json:"body_val"`
	StripePeriod float64 `json:"stripe_period"`
	StripeAmp    float64 `json:"stripe_amp"`
	BodyNoise    float64 `json:"body_noise"`

	// Part: the class-distinctive shape of radius PartRadius in a saturated
	// class colour, centred on the ellipse at PartOffset of its radius.
	PartRadius float64 `json:"part_radius"`
	PartOffset float64 `json:"part_offset"`

	// ObjectScale, when set (non-zero), draws a log-uniform factor per
	// object that scales its body axes, stripe period and part radius
	// together: objects of many sizes, as in real photographs, so that the
	// nets meet at training time the sizes that multi-scale inference
	// (0.5×–2×) shows them. Unset (the default) draws nothing, so datasets
	// made without it are unchanged.
	ObjectScale Range `json:"object_scale,omitzero"`

	// PixelNoise is the sd of the Normal noise added to every pixel.
	PixelNoise float64 `json:"pixel_noise"`
	// Band is the width of the 255 ignore band on label boundaries (half on
	// each side); 0 disables it.
	Band float64 `json:"band"`

	// Saliency (written only when asked for): ground-truth foreground, box
	// blur of side SalBlur, plus Normal(0, SalNoise), clipped to [0,1] and
	// divided by its maximum.
	SalBlur  int     `json:"sal_blur"`
	SalNoise float64 `json:"sal_noise"`
}

// DefaultGeometry is the v3 recipe (96×96, 5 classes) adapted to a w×h
// image and k classes: lengths scale with s = min(w,h)/96, the clutter count
// with the area (constant density), the noise lattices stay per image, and
// the body hue spread stays 0.35 of the spacing 1/k between class hues
// (0.07 at k = 5), so neighbouring classes overlap as in v3. At 96×96 and
// k = 5 every value is v3's except the clutter colour (see ClutterShade). (The v4 variant kept the part radius at 4.5 px
// while scaling the body; set PartRadius to get it.)
func DefaultGeometry(w, h, k int) Geometry {
	s := float64(min(w, h)) / 96
	blur := int(math.Round(7*s)) | 1
	return Geometry{
		BaseColor:  Range{70, 170},
		CoarseAmp:  60,
		CoarseGrid: 6,
		FineAmp:    30,
		FineGrid:   12,
		Gain:       Range{0.5, 1.5},

		Clutter:       int(math.Round(14 * float64(w*h) / (96 * 96 * s * s))),
		ClutterShade:  60,
		ClutterTint:   15,
		LineLength:    Range{8 * s, 30 * s},
		LineHalfWidth: Range{0.7 * s, 1.8 * s},
		DiscRadius:    Range{2 * s, 6 * s},
		BoxHalfSide:   Range{2 * s, 5 * s},
		BoxAspect:     Range{0.5, 2},

		MinObjects:    1,
		MaxObjects:    3,
		Margin:        12 * s,
		CenterSpacing: 32 * s,
		PlaceTries:    30,

		BodyAxis:     Range{14 * s, 21 * s},
		BodyAspect:   Range{0.6, 1},
		HueSpread:    0.35 / float64(max(k, 1)),
		BodySat:      0.45,
		BodyVal:      0.75,
		StripePeriod: 5 * s,
		StripeAmp:    25,
		BodyNoise:    6,

		PartRadius: 4.5 * s,
		PartOffset: 0.85,

		PixelNoise: 5,
		Band:       2 * s,

		SalBlur:  blur,
		SalNoise: 0.15,
	}
}

// validate returns the name of the first unusable field.
func (g *Geometry) validate(w, h int) error {
	bad := func(field string) error { return fmt.Errorf("geometry.%s: invalid value", field) }
	switch {
	case !g.BaseColor.valid(false):
		return bad("base_color")
	case g.CoarseGrid < 2:
		return bad("coarse_grid")
	case g.FineGrid < 2:
		return bad("fine_grid")
	case !g.Gain.valid(false):
		return bad("gain")
	case g.Clutter < 0:
		return bad("clutter")
	case g.ClutterShade < 0:
		return bad("clutter_shade")
	case g.ClutterTint < 0:
		return bad("clutter_tint")
	case !g.LineLength.valid(true):
		return bad("line_length")
	case !g.LineHalfWidth.valid(true):
		return bad("line_half_width")
	case !g.DiscRadius.valid(true):
		return bad("disc_radius")
	case !g.BoxHalfSide.valid(true):
		return bad("box_half_side")
	case !g.BoxAspect.valid(true):
		return bad("box_aspect")
	case g.MinObjects < 1:
		return bad("min_objects")
	case g.MaxObjects < g.MinObjects:
		return bad("max_objects")
	case g.Margin < 0 || 2*g.Margin >= float64(min(w, h)):
		return bad("margin")
	case g.CenterSpacing < 0:
		return bad("center_spacing")
	case g.PlaceTries < 1:
		return bad("place_tries")
	case !g.BodyAxis.valid(true):
		return bad("body_axis")
	case !g.BodyAspect.valid(true):
		return bad("body_aspect")
	case g.HueSpread < 0:
		return bad("hue_spread")
	case g.BodySat < 0 || g.BodySat > 1:
		return bad("body_sat")
	case g.BodyVal < 0 || g.BodyVal > 1:
		return bad("body_val")
	case g.StripePeriod <= 0:
		return bad("stripe_period")
	case g.BodyNoise < 0:
		return bad("body_noise")
	case g.PartRadius <= 0:
		return bad("part_radius")
	case g.ObjectScale != (Range{}) && (g.ObjectScale.Min <= 0 || !g.ObjectScale.valid(true)):
		return bad("object_scale")
	case g.PixelNoise < 0:
		return bad("pixel_noise")
	case g.Band < 0:
		return bad("band")
	case g.SalBlur < 1:
		return bad("sal_blur")
	case g.SalNoise < 0:
		return bad("sal_noise")
	}
	return nil
}

// LoadGeometry reads a JSON object of Geometry fields from path and lays it
// over DefaultGeometry(w, h, k): fields left out keep their defaults, so
// `{"object_scale": {"min": 0.6, "max": 1.6}}` is a whole file. Unknown
// fields and unusable values are errors naming the file and the field.
func LoadGeometry(path string, w, h, k int) (*Geometry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	g := DefaultGeometry(w, h, k)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return nil, badinput.New(path, "", "not a geometry object: %v", err)
	}
	if err := g.validate(w, h); err != nil {
		return nil, badinput.Wrap(path, "", err)
	}
	return &g, nil
}
