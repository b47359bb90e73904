/*
 * l2g libtorch shim: the single C ABI between Go and libtorch.
 *
 * Contract:
 *  - Handles are opaque. A tensor handle owns one at::Tensor (a reference to
 *    shared storage) and is released with l2g_tensor_free.
 *  - Every function that can fail returns NULL on success or a malloc'ed
 *    error message (libtorch's what_without_backtrace) that the caller frees
 *    with l2g_free_string. Results come back through out-parameters. No C++
 *    exception ever crosses this boundary.
 *  - Functions taking `nograd` run with autograd disabled when it is non-zero,
 *    for that call only (grad mode is thread-local and a goroutine may switch
 *    OS threads between calls).
 *  - The requested intra-op thread count is stored once and re-applied inside
 *    every call, because OpenMP's count is per OS thread.
 *  - Memory passed in (data, shapes, paths) is copied before the call returns;
 *    the shim keeps no caller pointer.
 *
 * The same header builds against libtorch 1.13 (Debian) and 2.x.
 */
#ifndef L2G_SHIM_H
#define L2G_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct l2g_tensor l2g_tensor;
typedef struct l2g_module l2g_module;

/* dtypes */
enum {
  L2G_FLOAT32 = 0,
  L2G_FLOAT64 = 1,
  L2G_FLOAT16 = 2,
  L2G_BFLOAT16 = 3,
  L2G_INT64 = 4,
  L2G_UINT8 = 5,
  L2G_BOOL = 6,
  L2G_INT32 = 7
};

/* device types */
enum { L2G_CPU = 0, L2G_CUDA = 1 };

/* unary ops */
enum {
  L2G_RELU = 0,
  L2G_SIGMOID,
  L2G_EXP,
  L2G_LOG,
  L2G_SQRT,
  L2G_NEG,
  L2G_ABS,
  L2G_TANH,
  L2G_CONTIGUOUS,
  L2G_CLONE,
  L2G_DETACH,
  L2G_LOG_SIGMOID,
  L2G_ZEROS_LIKE,
  L2G_ONES_LIKE,
  L2G_LOGICAL_NOT,
  L2G_FLOOR,
  L2G_ROUND
};

/* binary (tensor, tensor) ops, broadcasting */
enum {
  L2G_ADD = 0,
  L2G_SUB,
  L2G_MUL,
  L2G_DIV,
  L2G_MATMUL,
  L2G_BMM,
  L2G_GT,
  L2G_LT,
  L2G_GE,
  L2G_LE,
  L2G_EQ,
  L2G_NE,
  L2G_MAXIMUM,
  L2G_MINIMUM,
  L2G_POW,
  L2G_LOGICAL_AND,
  L2G_LOGICAL_OR
};

/* (tensor, scalar) ops */
enum {
  L2G_S_ADD = 0,
  L2G_S_SUB,
  L2G_S_MUL,
  L2G_S_DIV,
  L2G_S_POW,
  L2G_S_GT,
  L2G_S_LT,
  L2G_S_GE,
  L2G_S_LE,
  L2G_S_EQ,
  L2G_S_NE,
  L2G_S_CLAMP_MIN,
  L2G_S_CLAMP_MAX,
  L2G_S_RSUB /* s - x */
};

/* reductions over dims (ndims == 0: all elements) */
enum { L2G_SUM = 0, L2G_MEAN, L2G_AMAX, L2G_AMIN, L2G_NORM2 };

/* interpolation modes */
enum { L2G_NEAREST = 0, L2G_BILINEAR, L2G_BICUBIC };

/* grid_sample padding modes (ATen's numbering) */
enum { L2G_PAD_ZEROS = 0, L2G_PAD_BORDER = 1, L2G_PAD_REFLECTION = 2 };

/* in-place initialisers */
enum { L2G_INIT_UNIFORM = 0, L2G_INIT_NORMAL, L2G_INIT_CONSTANT };

/* loss reductions (ATen's numbering) */
enum { L2G_REDUCE_NONE = 0, L2G_REDUCE_MEAN = 1, L2G_REDUCE_SUM = 2 };

void l2g_free_string(char *s);

/* runtime */
char *l2g_version(char **out);
char *l2g_parallel_info(char **out);
char *l2g_set_num_threads(int n);

/* How the process's C allocator is set up (see tune_malloc in shim.cpp):
 * L2G_MALLOC_TUNED (one arena, no mmap, no trim: freed tensors stay in the
 * heap), L2G_MALLOC_SYSTEM (glibc defaults, L2G_MALLOC=system) or
 * L2G_MALLOC_UNSUPPORTED (not glibc). Cannot fail. */
#define L2G_MALLOC_SYSTEM 0
#define L2G_MALLOC_TUNED 1
#define L2G_MALLOC_UNSUPPORTED 2
int l2g_malloc_mode(void);
char *l2g_get_num_threads(int *out);
char *l2g_cuda_device_count(int *out);
char *l2g_manual_seed(uint64_t seed);
char *l2g_rng_get_state(l2g_tensor **out);
char *l2g_rng_set_state(l2g_tensor *state);

/* creation and data movement */
char *l2g_tensor_from_data(const void *data, size_t nbytes, int dtype,
                           const int64_t *shape, int ndim, int device_type,
                           int device_index, l2g_tensor **out);
char *l2g_tensor_full(const int64_t *shape, int ndim, double value, int dtype,
                      int device_type, int device_index, l2g_tensor **out);
/* kind 0: uniform [0,1), 1: standard normal */
char *l2g_tensor_random(const int64_t *shape, int ndim, int kind, int dtype,
                        int device_type, int device_index, l2g_tensor **out);
char *l2g_tensor_arange(double start, double end, double step, int dtype,
                        int device_type, int device_index, l2g_tensor **out);
void l2g_tensor_free(l2g_tensor *t);
char *l2g_tensor_shallow_clone(l2g_tensor *t, l2g_tensor **out);
char *l2g_tensor_info(l2g_tensor *t, int *ndim, int64_t *shape, int max_dims,
                      int *dtype, int *device_type, int *device_index,
                      int *requires_grad);
char *l2g_tensor_copy_out(l2g_tensor *t, void *dst, size_t nbytes);
char *l2g_tensor_item(l2g_tensor *t, double *out);
char *l2g_tensor_to(int nograd, l2g_tensor *t, int dtype, int device_type,
                    int device_index, l2g_tensor **out);

/* autograd */
char *l2g_tensor_set_requires_grad(l2g_tensor *t, int requires_grad);
char *l2g_tensor_backward(l2g_tensor *t, l2g_tensor *grad /* may be NULL */);
char *l2g_tensor_grad(l2g_tensor *t, l2g_tensor **out /* NULL if none */);
char *l2g_tensor_zero_grad(l2g_tensor *t);
/* in-place, without autograd: dst.copy_(src); initialisers */
char *l2g_tensor_copy_(l2g_tensor *dst, l2g_tensor *src);
char *l2g_tensor_init_(l2g_tensor *t, int kind, double a, double b);

/* elementwise */
char *l2g_unary(int nograd, int op, l2g_tensor *x, l2g_tensor **out);
char *l2g_binary(int nograd, int op, l2g_tensor *a, l2g_tensor *b,
                 l2g_tensor **out);
char *l2g_scalar(int nograd, int op, l2g_tensor *a, double s,
                 l2g_tensor **out);
char *l2g_clamp(int nograd, l2g_tensor *x, int has_min, double min, int has_max,
                double max, l2g_tensor **out);
char *l2g_where(int nograd, l2g_tensor *cond, l2g_tensor *a, l2g_tensor *b,
                l2g_tensor **out);
char *l2g_masked_fill(int nograd, l2g_tensor *x, l2g_tensor *mask, double value,
                      l2g_tensor **out);

/* reductions */
char *l2g_reduce(int nograd, int op, l2g_tensor *x, const int64_t *dims,
                 int ndims, int keepdim, l2g_tensor **out);
char *l2g_max_dim(int nograd, l2g_tensor *x, int64_t dim, int keepdim,
                  l2g_tensor **values, l2g_tensor **indices);
char *l2g_argmax(int nograd, l2g_tensor *x, int64_t dim, int keepdim,
                 l2g_tensor **out);

/* shapes */
char *l2g_reshape(int nograd, l2g_tensor *x, const int64_t *shape, int ndim,
                  l2g_tensor **out);
char *l2g_permute(int nograd, l2g_tensor *x, const int64_t *dims, int ndim,
                  l2g_tensor **out);
char *l2g_expand(int nograd, l2g_tensor *x, const int64_t *shape, int ndim,
                 l2g_tensor **out);
char *l2g_repeat(int nograd, l2g_tensor *x, const int64_t *reps, int ndim,
                 l2g_tensor **out);
char *l2g_narrow(int nograd, l2g_tensor *x, int64_t dim, int64_t start,
                 int64_t length, l2g_tensor **out);
char *l2g_index_select(int nograd, l2g_tensor *x, int64_t dim,
                       l2g_tensor *index, l2g_tensor **out);
char *l2g_flip(int nograd, l2g_tensor *x, const int64_t *dims, int ndims,
               l2g_tensor **out);
char *l2g_transpose(int nograd, l2g_tensor *x, int64_t d0, int64_t d1,
                    l2g_tensor **out);
char *l2g_unsqueeze(int nograd, l2g_tensor *x, int64_t dim, l2g_tensor **out);
char *l2g_squeeze(int nograd, l2g_tensor *x, int64_t dim, l2g_tensor **out);
char *l2g_cat(int nograd, l2g_tensor **xs, int n, int64_t dim, l2g_tensor **out);
char *l2g_stack(int nograd, l2g_tensor **xs, int n, int64_t dim,
                l2g_tensor **out);
/* constant_pad_nd: pads as in F.pad (last dim first: left, right, top, bottom…) */
char *l2g_pad(int nograd, l2g_tensor *x, const int64_t *pads, int npads,
              double value, l2g_tensor **out);
char *l2g_one_hot(int nograd, l2g_tensor *x, int64_t num_classes,
                  l2g_tensor **out);

/* nn */
char *l2g_conv2d(int nograd, l2g_tensor *x, l2g_tensor *w, l2g_tensor *b,
                 const int64_t *stride, const int64_t *padding,
                 const int64_t *dilation, int64_t groups, l2g_tensor **out);
char *l2g_batch_norm_eval(int nograd, l2g_tensor *x, l2g_tensor *weight,
                          l2g_tensor *bias, l2g_tensor *mean, l2g_tensor *var,
                          double eps, l2g_tensor **out);
/* feature != 0: Dropout2d (whole channels) */
char *l2g_dropout(int nograd, l2g_tensor *x, double p, int train, int feature,
                  l2g_tensor **out);
char *l2g_max_pool2d(int nograd, l2g_tensor *x, const int64_t *kernel,
                     const int64_t *stride, const int64_t *padding,
                     const int64_t *dilation, int ceil_mode, l2g_tensor **out);
char *l2g_avg_pool2d(int nograd, l2g_tensor *x, const int64_t *kernel,
                     const int64_t *stride, const int64_t *padding,
                     int ceil_mode, int count_include_pad, l2g_tensor **out);
char *l2g_adaptive_avg_pool2d(int nograd, l2g_tensor *x, int64_t oh, int64_t ow,
                              l2g_tensor **out);
/* size given (oh, ow); align_corners ignored for nearest */
char *l2g_interpolate(int nograd, l2g_tensor *x, int mode, int64_t oh,
                      int64_t ow, int align_corners, l2g_tensor **out);
char *l2g_grid_sample(int nograd, l2g_tensor *x, l2g_tensor *grid, int mode,
                      int padding_mode, int align_corners, l2g_tensor **out);
char *l2g_softmax(int nograd, l2g_tensor *x, int64_t dim, int log,
                  l2g_tensor **out);
char *l2g_mse_loss(int nograd, l2g_tensor *x, l2g_tensor *target, int reduction,
                   l2g_tensor **out);
char *l2g_bce_with_logits(int nograd, l2g_tensor *x, l2g_tensor *target,
                          int reduction, l2g_tensor **out);
/* x: (N, C, ...) logits, target: (N, ...) int64 class indices */
char *l2g_cross_entropy(int nograd, l2g_tensor *x, l2g_tensor *target,
                        int64_t ignore_index, int reduction, l2g_tensor **out);

/* SGD (PyTorch semantics, dampening 0) over n parameters in one call, without
 * autograd. Parameters whose grad is undefined are skipped (no weight decay).
 * bufs[i] is the zero-initialised momentum buffer of params[i] (may be NULL
 * when momentum == 0). */
char *l2g_sgd_step(l2g_tensor **params, l2g_tensor **bufs, int n,
                   const double *lrs, const double *wds, double momentum,
                   int nesterov);

/* TorchScript */
char *l2g_jit_load(const char *path, int device_type, int device_index,
                   l2g_module **out);
void l2g_jit_free(l2g_module *m);
/* forward(inputs...) in eval mode without autograd; the output must be a
 * tensor or a tuple/list whose first element is a tensor. */
char *l2g_jit_forward(l2g_module *m, l2g_tensor **inputs, int n,
                      l2g_tensor **out);

#ifdef __cplusplus
}
#endif

#endif /* L2G_SHIM_H */
