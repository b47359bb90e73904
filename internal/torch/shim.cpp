//go:build !l2g_sharedlib

// The shim is compiled by cgo unless the binary links a prebuilt
// libl2gtorch.so (build tag l2g_sharedlib, see scripts/build-shim.sh).
#include "shim.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

struct l2g_module {
  torch::jit::Module m;
};

namespace {

std::atomic<int> g_threads{0};

// g_malloc records what tune_malloc did, for l2g_malloc_mode.
int g_malloc = L2G_MALLOC_SYSTEM;

// tune_malloc keeps freed tensor memory in the process instead of handing
// it back to the kernel. glibc serves every block over 32 MB (the ceiling
// of its dynamic mmap threshold) with a fresh mmap, and every block a
// non-main thread asks for from a per-thread arena capped at 64 MB, so a
// training step that frees and reallocates its activations pays a page
// fault per 4 KiB each step: measured here (conv-BN-ReLU-conv on
// 8x3x224x224, 2 threads) 5.5 s per step in Python torch and 4.9 s in l2g,
// 0.41 s in l2g with this tuning. Go calls libtorch from many OS threads,
// so one arena is needed as well as no mmap. It runs as a constructor,
// before the Go runtime starts any thread, because a thread keeps the
// arena it first used. L2G_MALLOC=system leaves glibc's defaults.
__attribute__((constructor)) void tune_malloc() {
#if defined(__GLIBC__)
  const char *v = std::getenv("L2G_MALLOC");
  if (v != nullptr && std::strcmp(v, "system") == 0) {
    return;
  }
  bool ok = mallopt(M_ARENA_MAX, 1) == 1;
  ok = mallopt(M_MMAP_MAX, 0) == 1 && ok;
  ok = mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1 && ok;
  ok = mallopt(M_TOP_PAD, 64 << 20) == 1 && ok;
  g_malloc = ok ? L2G_MALLOC_TUNED : L2G_MALLOC_SYSTEM;
#else
  g_malloc = L2G_MALLOC_UNSUPPORTED;
#endif
}

char *dup(const std::string &s) {
  char *p = static_cast<char *>(std::malloc(s.size() + 1));
  if (p != nullptr) {
    std::memcpy(p, s.c_str(), s.size() + 1);
  }
  return p;
}

// apply_threads gives the calling OS thread the process-wide thread count.
// OpenMP keeps the count per OS thread; get_num_threads() first runs
// libtorch's lazy per-thread initialisation, so that even a Go thread that
// never ran an ATen parallel loop does not keep OpenMP's own default.
void apply_threads() {
  int cur = at::get_num_threads();
  int n = g_threads.load(std::memory_order_relaxed);
  if (n > 0 && cur != n) {
    at::set_num_threads(n);
  }
}

inline at::Tensor &T(l2g_tensor *t) {
  if (t == nullptr) {
    throw std::invalid_argument("null tensor handle");
  }
  return *reinterpret_cast<at::Tensor *>(t);
}

inline l2g_tensor *H(at::Tensor t) {
  return reinterpret_cast<l2g_tensor *>(new at::Tensor(std::move(t)));
}

at::ScalarType to_scalar_type(int dt) {
  switch (dt) {
  case L2G_FLOAT32:
    return at::kFloat;
  case L2G_FLOAT64:
    return at::kDouble;
  case L2G_FLOAT16:
    return at::kHalf;
  case L2G_BFLOAT16:
    return at::kBFloat16;
  case L2G_INT64:
    return at::kLong;
  case L2G_UINT8:
    return at::kByte;
  case L2G_BOOL:
    return at::kBool;
  case L2G_INT32:
    return at::kInt;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(dt));
}

int from_scalar_type(at::ScalarType st) {
  switch (st) {
  case at::kFloat:
    return L2G_FLOAT32;
  case at::kDouble:
    return L2G_FLOAT64;
  case at::kHalf:
    return L2G_FLOAT16;
  case at::kBFloat16:
    return L2G_BFLOAT16;
  case at::kLong:
    return L2G_INT64;
  case at::kByte:
    return L2G_UINT8;
  case at::kBool:
    return L2G_BOOL;
  case at::kInt:
    return L2G_INT32;
  default:
    return -1;
  }
}

at::Device to_device(int type, int index) {
  switch (type) {
  case L2G_CPU:
    return at::Device(at::kCPU);
  case L2G_CUDA:
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw std::invalid_argument("unknown device type " + std::to_string(type));
}

at::TensorOptions opts(int dtype, int dtype_dev, int index) {
  return at::TensorOptions()
      .dtype(to_scalar_type(dtype))
      .device(to_device(dtype_dev, index));
}

at::IntArrayRef ints(const int64_t *p, int n) {
  return at::IntArrayRef(p, static_cast<size_t>(n));
}

} // namespace

// GUARD runs body with the thread count applied and every exception turned
// into the returned message; NOGRAD additionally disables autograd when asked.
#define GUARD(...)                                                            \
  try {                                                                        \
    apply_threads();                                                           \
    __VA_ARGS__;                                                               \
    return nullptr;                                                            \
  } catch (const c10::Error &e) {                                              \
    return dup(e.what_without_backtrace());                                    \
  } catch (const std::exception &e) {                                          \
    return dup(e.what());                                                      \
  } catch (...) {                                                              \
    return dup("unknown C++ exception");                                       \
  }

#define NOGRAD(ng, ...) GUARD(c10::AutoGradMode _mode(!(ng)); __VA_ARGS__)

extern "C" {

void l2g_free_string(char *s) { std::free(s); }

char *l2g_version(char **out) { GUARD(*out = dup(TORCH_VERSION)) }

char *l2g_parallel_info(char **out) { GUARD(*out = dup(at::get_parallel_info())) }

char *l2g_set_num_threads(int n) {
  GUARD(if (n <= 0) throw std::invalid_argument(
      "thread count must be positive, got " + std::to_string(n));
        g_threads.store(n); at::set_num_threads(n))
}

int l2g_malloc_mode(void) { return g_malloc; }

char *l2g_get_num_threads(int *out) { GUARD(*out = at::get_num_threads()) }

char *l2g_cuda_device_count(int *out) {
  GUARD(*out = at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0)
}

char *l2g_manual_seed(uint64_t seed) { GUARD(at::manual_seed(seed)) }

char *l2g_rng_get_state(l2g_tensor **out) {
  GUARD(auto gen = at::detail::getDefaultCPUGenerator();
        std::lock_guard<std::mutex> lock(gen.mutex());
        *out = H(gen.get_state()))
}

char *l2g_rng_set_state(l2g_tensor *state) {
  GUARD(auto gen = at::detail::getDefaultCPUGenerator();
        std::lock_guard<std::mutex> lock(gen.mutex()); gen.set_state(T(state)))
}

char *l2g_tensor_from_data(const void *data, size_t nbytes, int dtype,
                           const int64_t *shape, int ndim, int device_type,
                           int device_index, l2g_tensor **out) {
  GUARD({
    auto o = at::TensorOptions().dtype(to_scalar_type(dtype));
    at::Tensor t = at::empty(ints(shape, ndim), o);
    size_t want = t.numel() * t.element_size();
    if (want != nbytes) {
      throw std::invalid_argument("data has " + std::to_string(nbytes) +
                                  " bytes, shape needs " +
                                  std::to_string(want));
    }
    if (nbytes > 0) {
      std::memcpy(t.data_ptr(), data, nbytes);
    }
    if (device_type != L2G_CPU) {
      t = t.to(to_device(device_type, device_index));
    }
    *out = H(t);
  })
}

char *l2g_tensor_full(const int64_t *shape, int ndim, double value, int dtype,
                      int device_type, int device_index, l2g_tensor **out) {
  GUARD(*out = H(at::full(ints(shape, ndim), value,
                          opts(dtype, device_type, device_index))))
}

char *l2g_tensor_random(const int64_t *shape, int ndim, int kind, int dtype,
                        int device_type, int device_index, l2g_tensor **out) {
  GUARD({
    auto o = opts(dtype, device_type, device_index);
    *out = H(kind == 0 ? at::rand(ints(shape, ndim), o)
                       : at::randn(ints(shape, ndim), o));
  })
}

char *l2g_tensor_arange(double start, double end, double step, int dtype,
                        int device_type, int device_index, l2g_tensor **out) {
  GUARD(*out = H(at::arange(start, end, step,
                            opts(dtype, device_type, device_index))))
}

void l2g_tensor_free(l2g_tensor *t) {
  delete reinterpret_cast<at::Tensor *>(t);
}

char *l2g_tensor_shallow_clone(l2g_tensor *t, l2g_tensor **out) {
  GUARD(*out = H(T(t)))
}

char *l2g_tensor_info(l2g_tensor *t, int *ndim, int64_t *shape, int max_dims,
                      int *dtype, int *device_type, int *device_index,
                      int *requires_grad) {
  GUARD({
    const at::Tensor &x = T(t);
    if (!x.defined()) {
      throw std::invalid_argument("undefined tensor");
    }
    int d = static_cast<int>(x.dim());
    *ndim = d;
    for (int i = 0; i < d && i < max_dims; i++) {
      shape[i] = x.size(i);
    }
    *dtype = from_scalar_type(x.scalar_type());
    *device_type = x.is_cuda() ? L2G_CUDA : L2G_CPU;
    *device_index = x.is_cuda() ? x.device().index() : -1;
    *requires_grad = x.requires_grad() ? 1 : 0;
  })
}

char *l2g_tensor_copy_out(l2g_tensor *t, void *dst, size_t nbytes) {
  GUARD({
    at::Tensor x = T(t).detach().to(at::kCPU).contiguous();
    size_t have = x.numel() * x.element_size();
    if (have != nbytes) {
      throw std::invalid_argument("tensor has " + std::to_string(have) +
                                  " bytes, destination " +
                                  std::to_string(nbytes));
    }
    if (nbytes > 0) {
      std::memcpy(dst, x.data_ptr(), nbytes);
    }
  })
}

char *l2g_tensor_item(l2g_tensor *t, double *out) {
  GUARD(*out = T(t).item<double>())
}

char *l2g_tensor_to(int nograd, l2g_tensor *t, int dtype, int device_type,
                    int device_index, l2g_tensor **out) {
  NOGRAD(nograd, *out = H(T(t).to(to_device(device_type, device_index),
                                  to_scalar_type(dtype))))
}

char *l2g_tensor_set_requires_grad(l2g_tensor *t, int requires_grad) {
  GUARD(T(t).requires_grad_(requires_grad != 0))
}

char *l2g_tensor_backward(l2g_tensor *t, l2g_tensor *grad) {
  GUARD({
    if (grad != nullptr) {
      T(t).backward(T(grad));
    } else {
      T(t).backward();
    }
  })
}

char *l2g_tensor_grad(l2g_tensor *t, l2g_tensor **out) {
  GUARD({
    const at::Tensor &g = T(t).grad();
    *out = g.defined() ? H(g) : nullptr;
  })
}

char *l2g_tensor_zero_grad(l2g_tensor *t) { GUARD(T(t).mutable_grad().reset()) }

char *l2g_tensor_copy_(l2g_tensor *dst, l2g_tensor *src) {
  NOGRAD(1, T(dst).copy_(T(src)))
}

char *l2g_tensor_init_(l2g_tensor *t, int kind, double a, double b) {
  NOGRAD(1, {
    switch (kind) {
    case L2G_INIT_UNIFORM:
      T(t).uniform_(a, b);
      break;
    case L2G_INIT_NORMAL:
      T(t).normal_(a, b);
      break;
    case L2G_INIT_CONSTANT:
      T(t).fill_(a);
      break;
    default:
      throw std::invalid_argument("unknown init kind");
    }
  })
}

char *l2g_unary(int nograd, int op, l2g_tensor *x, l2g_tensor **out) {
  NOGRAD(nograd, {
    const at::Tensor &a = T(x);
    at::Tensor r;
    switch (op) {
    case L2G_RELU:
      r = at::relu(a);
      break;
    case L2G_SIGMOID:
      r = at::sigmoid(a);
      break;
    case L2G_EXP:
      r = at::exp(a);
      break;
    case L2G_LOG:
      r = at::log(a);
      break;
    case L2G_SQRT:
      r = at::sqrt(a);
      break;
    case L2G_NEG:
      r = at::neg(a);
      break;
    case L2G_ABS:
      r = at::abs(a);
      break;
    case L2G_TANH:
      r = at::tanh(a);
      break;
    case L2G_CONTIGUOUS:
      r = a.contiguous();
      break;
    case L2G_CLONE:
      r = a.clone();
      break;
    case L2G_DETACH:
      r = a.detach();
      break;
    case L2G_LOG_SIGMOID:
      r = at::log_sigmoid(a);
      break;
    case L2G_ZEROS_LIKE:
      r = at::zeros_like(a);
      break;
    case L2G_ONES_LIKE:
      r = at::ones_like(a);
      break;
    case L2G_LOGICAL_NOT:
      r = at::logical_not(a);
      break;
    case L2G_FLOOR:
      r = at::floor(a);
      break;
    case L2G_ROUND:
      r = at::round(a);
      break;
    default:
      throw std::invalid_argument("unknown unary op " + std::to_string(op));
    }
    *out = H(r);
  })
}

char *l2g_binary(int nograd, int op, l2g_tensor *x, l2g_tensor *y,
                 l2g_tensor **out) {
  NOGRAD(nograd, {
    const at::Tensor &a = T(x);
    const at::Tensor &b = T(y);
    at::Tensor r;
    switch (op) {
    case L2G_ADD:
      r = at::add(a, b);
      break;
    case L2G_SUB:
      r = at::sub(a, b);
      break;
    case L2G_MUL:
      r = at::mul(a, b);
      break;
    case L2G_DIV:
      r = at::div(a, b);
      break;
    case L2G_MATMUL:
      r = at::matmul(a, b);
      break;
    case L2G_BMM:
      r = at::bmm(a, b);
      break;
    case L2G_GT:
      r = at::gt(a, b);
      break;
    case L2G_LT:
      r = at::lt(a, b);
      break;
    case L2G_GE:
      r = at::ge(a, b);
      break;
    case L2G_LE:
      r = at::le(a, b);
      break;
    case L2G_EQ:
      r = at::eq(a, b);
      break;
    case L2G_NE:
      r = at::ne(a, b);
      break;
    case L2G_MAXIMUM:
      r = at::maximum(a, b);
      break;
    case L2G_MINIMUM:
      r = at::minimum(a, b);
      break;
    case L2G_POW:
      r = at::pow(a, b);
      break;
    case L2G_LOGICAL_AND:
      r = at::logical_and(a, b);
      break;
    case L2G_LOGICAL_OR:
      r = at::logical_or(a, b);
      break;
    default:
      throw std::invalid_argument("unknown binary op " + std::to_string(op));
    }
    *out = H(r);
  })
}

char *l2g_scalar(int nograd, int op, l2g_tensor *x, double s,
                 l2g_tensor **out) {
  NOGRAD(nograd, {
    const at::Tensor &a = T(x);
    at::Scalar v(s);
    at::Tensor r;
    switch (op) {
    case L2G_S_ADD:
      r = at::add(a, v);
      break;
    case L2G_S_SUB:
      r = at::sub(a, v);
      break;
    case L2G_S_MUL:
      r = at::mul(a, v);
      break;
    case L2G_S_DIV:
      r = at::div(a, v);
      break;
    case L2G_S_POW:
      r = at::pow(a, v);
      break;
    case L2G_S_GT:
      r = at::gt(a, v);
      break;
    case L2G_S_LT:
      r = at::lt(a, v);
      break;
    case L2G_S_GE:
      r = at::ge(a, v);
      break;
    case L2G_S_LE:
      r = at::le(a, v);
      break;
    case L2G_S_EQ:
      r = at::eq(a, v);
      break;
    case L2G_S_NE:
      r = at::ne(a, v);
      break;
    case L2G_S_CLAMP_MIN:
      r = at::clamp_min(a, v);
      break;
    case L2G_S_CLAMP_MAX:
      r = at::clamp_max(a, v);
      break;
    case L2G_S_RSUB:
      r = at::rsub(a, v);
      break;
    default:
      throw std::invalid_argument("unknown scalar op " + std::to_string(op));
    }
    *out = H(r);
  })
}

char *l2g_clamp(int nograd, l2g_tensor *x, int has_min, double mn, int has_max,
                double mx, l2g_tensor **out) {
  NOGRAD(nograd, {
    c10::optional<at::Scalar> lo, hi;
    if (has_min) {
      lo = at::Scalar(mn);
    }
    if (has_max) {
      hi = at::Scalar(mx);
    }
    *out = H(at::clamp(T(x), lo, hi));
  })
}

char *l2g_where(int nograd, l2g_tensor *cond, l2g_tensor *a, l2g_tensor *b,
                l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::where(T(cond), T(a), T(b))))
}

char *l2g_masked_fill(int nograd, l2g_tensor *x, l2g_tensor *mask, double value,
                      l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::masked_fill(T(x), T(mask), value)))
}

char *l2g_reduce(int nograd, int op, l2g_tensor *x, const int64_t *dims,
                 int ndims, int keepdim, l2g_tensor **out) {
  NOGRAD(nograd, {
    const at::Tensor &a = T(x);
    std::vector<int64_t> d(dims, dims + ndims);
    if (ndims == 0) {
      for (int64_t i = 0; i < a.dim(); i++) {
        d.push_back(i);
      }
    }
    bool k = keepdim != 0;
    at::Tensor r;
    switch (op) {
    case L2G_SUM:
      r = at::sum(a, d, k);
      break;
    case L2G_MEAN:
      r = at::mean(a, d, k);
      break;
    case L2G_AMAX:
      r = at::amax(a, d, k);
      break;
    case L2G_AMIN:
      r = at::amin(a, d, k);
      break;
    case L2G_NORM2:
      r = at::norm(a, at::Scalar(2.0), d, k);
      break;
    default:
      throw std::invalid_argument("unknown reduction " + std::to_string(op));
    }
    *out = H(r);
  })
}

char *l2g_max_dim(int nograd, l2g_tensor *x, int64_t dim, int keepdim,
                  l2g_tensor **values, l2g_tensor **indices) {
  NOGRAD(nograd, {
    auto r = at::max(T(x), dim, keepdim != 0);
    at::Tensor v = std::get<0>(r), i = std::get<1>(r);
    *values = H(v);
    *indices = H(i);
  })
}

char *l2g_argmax(int nograd, l2g_tensor *x, int64_t dim, int keepdim,
                 l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::argmax(T(x), dim, keepdim != 0)))
}

char *l2g_reshape(int nograd, l2g_tensor *x, const int64_t *shape, int ndim,
                  l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::reshape(T(x), ints(shape, ndim))))
}

char *l2g_permute(int nograd, l2g_tensor *x, const int64_t *dims, int ndim,
                  l2g_tensor **out) {
  NOGRAD(nograd, *out = H(T(x).permute(ints(dims, ndim))))
}

char *l2g_expand(int nograd, l2g_tensor *x, const int64_t *shape, int ndim,
                 l2g_tensor **out) {
  NOGRAD(nograd, *out = H(T(x).expand(ints(shape, ndim))))
}

char *l2g_repeat(int nograd, l2g_tensor *x, const int64_t *reps, int ndim,
                 l2g_tensor **out) {
  NOGRAD(nograd, *out = H(T(x).repeat(ints(reps, ndim))))
}

char *l2g_narrow(int nograd, l2g_tensor *x, int64_t dim, int64_t start,
                 int64_t length, l2g_tensor **out) {
  NOGRAD(nograd, *out = H(T(x).narrow(dim, start, length)))
}

char *l2g_index_select(int nograd, l2g_tensor *x, int64_t dim,
                       l2g_tensor *index, l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::index_select(T(x), dim, T(index))))
}

char *l2g_flip(int nograd, l2g_tensor *x, const int64_t *dims, int ndims,
               l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::flip(T(x), ints(dims, ndims))))
}

char *l2g_transpose(int nograd, l2g_tensor *x, int64_t d0, int64_t d1,
                    l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::transpose(T(x), d0, d1)))
}

char *l2g_unsqueeze(int nograd, l2g_tensor *x, int64_t dim, l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::unsqueeze(T(x), dim)))
}

char *l2g_squeeze(int nograd, l2g_tensor *x, int64_t dim, l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::squeeze(T(x), dim)))
}

static std::vector<at::Tensor> list(l2g_tensor **xs, int n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int i = 0; i < n; i++) {
    v.push_back(T(xs[i]));
  }
  return v;
}

char *l2g_cat(int nograd, l2g_tensor **xs, int n, int64_t dim,
              l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::cat(list(xs, n), dim)))
}

char *l2g_stack(int nograd, l2g_tensor **xs, int n, int64_t dim,
                l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::stack(list(xs, n), dim)))
}

char *l2g_pad(int nograd, l2g_tensor *x, const int64_t *pads, int npads,
              double value, l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::constant_pad_nd(T(x), ints(pads, npads), value)))
}

char *l2g_one_hot(int nograd, l2g_tensor *x, int64_t num_classes,
                  l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::one_hot(T(x), num_classes)))
}

char *l2g_conv2d(int nograd, l2g_tensor *x, l2g_tensor *w, l2g_tensor *b,
                 const int64_t *stride, const int64_t *padding,
                 const int64_t *dilation, int64_t groups, l2g_tensor **out) {
  NOGRAD(nograd, {
    c10::optional<at::Tensor> bias;
    if (b != nullptr) {
      bias = T(b);
    }
    *out = H(at::conv2d(T(x), T(w), bias, ints(stride, 2), ints(padding, 2),
                        ints(dilation, 2), groups));
  })
}

char *l2g_batch_norm_eval(int nograd, l2g_tensor *x, l2g_tensor *weight,
                          l2g_tensor *bias, l2g_tensor *mean, l2g_tensor *var,
                          double eps, l2g_tensor **out) {
  NOGRAD(nograd, {
    c10::optional<at::Tensor> w, b;
    if (weight != nullptr) {
      w = T(weight);
    }
    if (bias != nullptr) {
      b = T(bias);
    }
    *out = H(at::batch_norm(T(x), w, b, T(mean), T(var), false, 0.0, eps,
                            at::globalContext().userEnabledCuDNN()));
  })
}

char *l2g_dropout(int nograd, l2g_tensor *x, double p, int train, int feature,
                  l2g_tensor **out) {
  NOGRAD(nograd, {
    if (p < 0 || p > 1) {
      throw std::invalid_argument("dropout probability must be in [0, 1], got " +
                                  std::to_string(p));
    }
    *out = H(feature ? at::feature_dropout(T(x), p, train != 0)
                     : at::dropout(T(x), p, train != 0));
  })
}

char *l2g_max_pool2d(int nograd, l2g_tensor *x, const int64_t *kernel,
                     const int64_t *stride, const int64_t *padding,
                     const int64_t *dilation, int ceil_mode, l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::max_pool2d(T(x), ints(kernel, 2), ints(stride, 2),
                                         ints(padding, 2), ints(dilation, 2),
                                         ceil_mode != 0)))
}

char *l2g_avg_pool2d(int nograd, l2g_tensor *x, const int64_t *kernel,
                     const int64_t *stride, const int64_t *padding,
                     int ceil_mode, int count_include_pad, l2g_tensor **out) {
  NOGRAD(nograd,
         *out = H(at::avg_pool2d(T(x), ints(kernel, 2), ints(stride, 2),
                                 ints(padding, 2), ceil_mode != 0,
                                 count_include_pad != 0)))
}

char *l2g_adaptive_avg_pool2d(int nograd, l2g_tensor *x, int64_t oh, int64_t ow,
                              l2g_tensor **out) {
  NOGRAD(nograd, {
    int64_t s[2] = {oh, ow};
    *out = H(at::adaptive_avg_pool2d(T(x), ints(s, 2)));
  })
}

char *l2g_interpolate(int nograd, l2g_tensor *x, int mode, int64_t oh,
                      int64_t ow, int align_corners, l2g_tensor **out) {
  NOGRAD(nograd, {
    const at::Tensor &a = T(x);
    if (a.dim() != 4) {
      throw std::invalid_argument("interpolate expects a 4-D (N,C,H,W) input, got " +
                                  std::to_string(a.dim()) + "-D");
    }
    int64_t s[2] = {oh, ow};
    switch (mode) {
    case L2G_NEAREST:
      *out = H(at::upsample_nearest2d(a, ints(s, 2)));
      break;
    case L2G_BILINEAR:
      *out = H(at::upsample_bilinear2d(a, ints(s, 2), align_corners != 0));
      break;
    case L2G_BICUBIC:
      *out = H(at::upsample_bicubic2d(a, ints(s, 2), align_corners != 0));
      break;
    default:
      throw std::invalid_argument("unknown interpolation mode " +
                                  std::to_string(mode));
    }
  })
}

char *l2g_grid_sample(int nograd, l2g_tensor *x, l2g_tensor *grid, int mode,
                      int padding_mode, int align_corners, l2g_tensor **out) {
  NOGRAD(nograd, {
    // ATen numbers grid_sampler modes bilinear 0, nearest 1, bicubic 2.
    int64_t m;
    switch (mode) {
    case L2G_BILINEAR:
      m = 0;
      break;
    case L2G_NEAREST:
      m = 1;
      break;
    case L2G_BICUBIC:
      m = 2;
      break;
    default:
      throw std::invalid_argument("unknown grid_sample mode");
    }
    *out = H(at::grid_sampler(T(x), T(grid), m, padding_mode,
                              align_corners != 0));
  })
}

char *l2g_softmax(int nograd, l2g_tensor *x, int64_t dim, int log,
                  l2g_tensor **out) {
  NOGRAD(nograd, *out = H(log ? at::log_softmax(T(x), dim)
                              : at::softmax(T(x), dim)))
}

char *l2g_mse_loss(int nograd, l2g_tensor *x, l2g_tensor *target, int reduction,
                   l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::mse_loss(T(x), T(target), reduction)))
}

char *l2g_bce_with_logits(int nograd, l2g_tensor *x, l2g_tensor *target,
                          int reduction, l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::binary_cross_entropy_with_logits(
                     T(x), T(target), c10::nullopt, c10::nullopt, reduction)))
}

char *l2g_cross_entropy(int nograd, l2g_tensor *x, l2g_tensor *target,
                        int64_t ignore_index, int reduction, l2g_tensor **out) {
  NOGRAD(nograd, *out = H(at::nll_loss_nd(at::log_softmax(T(x), 1), T(target),
                                          c10::nullopt, reduction,
                                          ignore_index)))
}

char *l2g_sgd_step(l2g_tensor **params, l2g_tensor **bufs, int n,
                   const double *lrs, const double *wds, double momentum,
                   int nesterov) {
  NOGRAD(1, {
    for (int i = 0; i < n; i++) {
      at::Tensor &p = T(params[i]);
      const at::Tensor &g = p.grad();
      if (!g.defined()) {
        continue;
      }
      at::Tensor d = g;
      if (wds[i] != 0) {
        d = d.add(p, wds[i]);
      }
      if (momentum != 0) {
        at::Tensor &buf = T(bufs[i]);
        // Zero-initialised buffers with dampening 0 reproduce PyTorch's
        // first step (buf = d).
        buf.mul_(momentum).add_(d);
        d = nesterov ? d.add(buf, momentum) : buf;
      }
      p.add_(d, -lrs[i]);
    }
  })
}

char *l2g_jit_load(const char *path, int device_type, int device_index,
                   l2g_module **out) {
  GUARD({
    auto *m = new l2g_module{
        torch::jit::load(std::string(path), to_device(device_type, device_index))};
    m->m.eval();
    *out = m;
  })
}

void l2g_jit_free(l2g_module *m) { delete m; }

char *l2g_jit_forward(l2g_module *m, l2g_tensor **inputs, int n,
                      l2g_tensor **out) {
  NOGRAD(1, {
    if (m == nullptr) {
      throw std::invalid_argument("null module handle");
    }
    std::vector<c10::IValue> in;
    for (int i = 0; i < n; i++) {
      in.emplace_back(T(inputs[i]));
    }
    c10::IValue r = m->m.forward(in);
    if (r.isTensor()) {
      *out = H(r.toTensor());
    } else if (r.isTuple() && !r.toTupleRef().elements().empty() &&
               r.toTupleRef().elements()[0].isTensor()) {
      *out = H(r.toTupleRef().elements()[0].toTensor());
    } else if (r.isList() && r.toListRef().size() > 0 &&
               r.toListRef()[0].isTensor()) {
      *out = H(r.toListRef()[0].toTensor());
    } else {
      throw std::invalid_argument("module output is not a tensor, nor a "
                                  "tuple/list starting with a tensor: " +
                                  r.tagKind());
    }
  })
}

} // extern "C"
