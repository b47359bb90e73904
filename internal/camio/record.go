// Package camio writes and reads CAM datasets: the normalized class
// activation maps of the classes present in each image, as a Parquet file
// with the schemas.CAM layout (streamed, row group by row group, written
// atomically), and as the reference's <id>_<k>.png files (so official
// outputs can be imported and evaluated).
package camio

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/x448/float16"

	"github.com/l2g/l2g/schemas"
)

// Record is one image's CAMs, in their stored encoding.
type Record struct {
	ID, Split string
	H, W      int
	// ClassIDs are the zero-based foreground classes, strictly ascending;
	// plane p belongs to ClassIDs[p] (segmentation label ClassIDs[p]+1).
	ClassIDs []int
	DType    string // schemas.CAMUint8 or schemas.CAMFloat16
	// Data holds len(ClassIDs) planes of H·W values, row-major, one byte
	// per value (uint8) or two (float16, little-endian).
	Data []byte
}

// NumPixels is H·W.
func (r *Record) NumPixels() int { return r.H * r.W }

func bytesPerValue(dtype string) int {
	if dtype == schemas.CAMFloat16 {
		return 2
	}
	return 1
}

// Value converts a stored code (a byte, or float16 bits) to the CAM value
// in [0, 1]. For uint8 it is code/255 in float64, as the reference computes
// it from the PNG, so comparisons with a threshold give the same ties.
func Value(dtype string, code uint16) float64 {
	if dtype == schemas.CAMFloat16 {
		return float64(float16.Frombits(code).Float32())
	}
	return float64(code) / 255
}

// Code returns the stored code of plane p at pixel i.
func (r *Record) Code(p, i int) uint16 {
	n := r.NumPixels()
	if r.DType == schemas.CAMFloat16 {
		return binary.LittleEndian.Uint16(r.Data[2*(p*n+i):])
	}
	return uint16(r.Data[p*n+i])
}

// Plane decodes plane p into dst (grown as needed) as float32 values in
// [0, 1] and returns it.
func (r *Record) Plane(p int, dst []float32) []float32 {
	n := r.NumPixels()
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	if r.DType == schemas.CAMFloat16 {
		src := r.Data[2*p*n : 2*(p+1)*n]
		for i := range dst {
			dst[i] = float16.Frombits(binary.LittleEndian.Uint16(src[2*i:])).Float32()
		}
		return dst
	}
	for i, v := range r.Data[p*n : (p+1)*n] {
		dst[i] = float32(v) / 255
	}
	return dst
}

// Top computes per pixel the largest code over the planes (top1), the first
// plane holding it (best: ties go to the lower class, as argmax does) and,
// when top2 is not nil, the second-largest code (equal to top1 on a tie).
// Codes order like the values they encode (non-negative float16 bits are
// monotonic), so no decoding is needed. With no planes every code is 0.
// Slices must have NumPixels elements.
func (r *Record) Top(best []uint8, top1, top2 []uint16) {
	n := r.NumPixels()
	best, top1 = best[:n], top1[:n]
	clear(best)
	clear(top1)
	if top2 != nil {
		top2 = top2[:n]
		clear(top2)
	}
	for p := range r.ClassIDs {
		pb := uint8(p)
		if r.DType == schemas.CAMFloat16 {
			src := r.Data[2*p*n : 2*(p+1)*n]
			for i := range top1 {
				v := binary.LittleEndian.Uint16(src[2*i:])
				if p == 0 || v > top1[i] {
					if top2 != nil && p > 0 {
						top2[i] = top1[i]
					}
					top1[i], best[i] = v, pb
				} else if top2 != nil && v > top2[i] {
					top2[i] = v
				}
			}
			continue
		}
		src := r.Data[p*n : (p+1)*n]
		if p == 0 {
			for i, v := range src {
				top1[i] = uint16(v)
			}
			continue
		}
		for i, b := range src {
			v := uint16(b)
			if v > top1[i] {
				if top2 != nil {
					top2[i] = top1[i]
				}
				top1[i], best[i] = v, pb
			} else if top2 != nil && v > top2[i] {
				top2[i] = v
			}
		}
	}
}

// quantize encodes normalized CAM values into dst per dtype. Values are
// clamped to [0, 1]; NaN is an error (it means a broken normalization).
// uint8 follows the reference: the float32 product v·255 rounded half to
// even and saturated, as OpenCV's saturate_cast does when cv2.imwrite gets
// a float array.
func quantize(dst []byte, src []float32, dtype string) error {
	if dtype == schemas.CAMFloat16 {
		for i, v := range src {
			if v != v {
				return fmt.Errorf("value %d is NaN", i)
			}
			v = min(max(v, 0), 1)
			binary.LittleEndian.PutUint16(dst[2*i:], float16.Fromfloat32(v).Bits())
		}
		return nil
	}
	for i, v := range src {
		if v != v {
			return fmt.Errorf("value %d is NaN", i)
		}
		x := v * 255 // float32 product, as numpy computes cam*255 on float32
		dst[i] = uint8(math.RoundToEven(float64(min(max(x, 0), 255))))
	}
	return nil
}
