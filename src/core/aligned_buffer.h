// An owned, 64-byte aligned byte buffer. Large buffers are 2 MiB aligned and
// advised to use transparent huge pages (weights are streamed every token).
// Move-only: copying big buffers must be explicit.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sys/mman.h>
#include <utility>

namespace rg {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // zero = false leaves the bytes uninitialised (the caller fills them; the
  // pages are then first touched, and faulted in, by that fill).
  explicit AlignedBuffer(size_t bytes, bool zero = true) { Resize(bytes, zero); }
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(AlignedBuffer&& o) noexcept { *this = std::move(o); }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  // Discards the old contents; the new bytes are zero unless zero is false.
  void Resize(size_t bytes, bool zero = true) {
    std::free(data_);
    data_ = nullptr;
    size_ = bytes;
    if (bytes == 0) return;
    const size_t align = bytes >= (4u << 20) ? (2u << 20) : 64;
    const size_t rounded = (bytes + align - 1) / align * align;
    data_ = std::aligned_alloc(align, rounded);
    if (!data_) throw std::bad_alloc();
    if (align > 64) madvise(data_, rounded, MADV_HUGEPAGE);
    if (zero) std::memset(data_, 0, bytes);
  }

  template <class T = void>
  T* data() { return static_cast<T*>(data_); }
  template <class T = void>
  const T* data() const { return static_cast<const T*>(data_); }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace rg
