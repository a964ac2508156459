// A byte buffer mapped straight from the kernel (mmap), so that freeing it
// gives the memory back to the system at once. For many large buffers that
// come and go (the state cache's snapshots): malloc would keep freed chunks
// of that size in its heap, and the process's RSS would not follow the
// cache's own accounting. Move-only.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <new>
#include <utility>

namespace rg {

class PageBuffer {
 public:
  PageBuffer() = default;
  explicit PageBuffer(size_t bytes) : size_(bytes) {
    if (bytes == 0) return;
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<char*>(p);
  }
  ~PageBuffer() {
    if (data_) ::munmap(data_, size_);
  }
  PageBuffer(PageBuffer&& o) noexcept { *this = std::move(o); }
  PageBuffer& operator=(PageBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;

  char* data() { return data_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace rg
