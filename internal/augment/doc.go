// Package augment builds the training and test inputs of the L2G pipeline
// from decoded images (spec §1, §5, §8): the VOC and COCO global views with
// their saliency, the local-view boxes, the test-time multi-scale inputs and
// the DeepLab training augmentation. Pixel operations come from
// internal/imaging and match Pillow / OpenCV exactly.
//
// All randomness is drawn from a *rand.Rand the caller passes in; Sampler
// derives one per (seed, epoch, image index, stream), so results do not
// depend on worker scheduling and a resumed run replays the same batches.
//
// Reference quirks and what this package does about them:
//
//  1. VOC 448-crop axes swapped (imutils.get_random_crop_box gets PIL's
//     (w, h) as (h, w)): fixed by default, the x offset is drawn from
//     [0, W−C] and y from [0, H−C]. VOCView.ReferenceCropQuirk reproduces
//     the reference: x from [0, H−C], y from [0, W−C], zero padded.
//  2. numpy not reseeded in loader workers (torch < 1.9), so local boxes
//     and jitter factors repeat every epoch: fixed, Sampler draws differ per
//     epoch and stay reproducible.
//  3. shuffle=False in the classifier loader: fixed, Sampler.Order
//     shuffles each epoch unless NoShuffle is set.
//  4. Random local-box offsets never reach m = C−c (numpy randint upper
//     bound is exclusive): kept for the "voc" and "coco" schemes to match
//     the reference; LocalBoxes.IncludeMax draws from {0..m} instead, and
//     the "random" scheme always does.
//
// Kept as in the reference because they define the method rather than
// being accidents: no flip or rescale in the classifier views, saliency
// divided by (max + 1e-10) and never binarized, Python's banker's rounding
// of test-time sizes, truncation (int()) of DeepLab scaled sizes.
package augment
