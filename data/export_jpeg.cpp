#include "data/export_jpeg.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "data/fashion_mnist.h"
#include "data/jpeg.h"
#include "engine/common.h"

namespace fs = std::filesystem;

namespace ofa::data {

namespace {

std::string zero_pad(int64_t v, int width) {
  std::string s = std::to_string(v);
  return s.size() < static_cast<size_t>(width) ? std::string(width - s.size(), '0') + s : s;
}

int digits(int64_t v) { return static_cast<int>(std::to_string(v < 1 ? 0 : v).size()); }

FashionMnistSplit parse_split(const std::string& s, const char* what) {
  if (s == "train") return FashionMnistSplit::Train;
  if (s == "test") return FashionMnistSplit::Test;
  throw Error(str_cat("export_jpeg: ", what, " must be \"train\" or \"test\", got \"", s, "\""));
}

void write_file(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  f.close();
  OFA_CHECK(f.good(), "export_jpeg: cannot write ", p.string());
}

int64_t write_split(const FashionMnist& ds, const fs::path& dir, const std::vector<std::string>& folders,
                    const ExportJpegOptions& opt, const std::string& tag) {
  for (const auto& f : folders) {
    std::error_code ec;
    fs::create_directories(dir / f, ec);
    OFA_CHECK(!ec, "export_jpeg: cannot create ", (dir / f).string(), ": ", ec.message());
  }
  std::vector<int64_t> per_class(folders.size(), 0);
  const int width = digits(ds.size() - 1);
  JpegEncodeOptions enc;
  enc.quality = opt.quality;
  int64_t written = 0;
  for (int64_t i = 0; i < ds.size(); ++i) {
    int64_t y = ds.label(i);
    if (opt.limit_per_class >= 0 && per_class[y] >= opt.limit_per_class) continue;
    ++per_class[y];
    std::vector<uint8_t> jpg = encode_jpeg(ds.image(i), FashionMnist::kCols, FashionMnist::kRows, 1, enc);
    write_file(dir / folders[y] / (zero_pad(i, width) + ".jpg"), jpg);
    ++written;
    if (opt.progress && written % 5000 == 0) *opt.progress << "  " << tag << ": " << written << " images\n" << std::flush;
  }
  if (opt.progress) *opt.progress << "  " << tag << ": " << written << " images written\n" << std::flush;
  return written;
}

}  // namespace

std::string class_folder_name(int64_t label, const std::string& name, int64_t num_classes) {
  std::string safe = name;
  for (auto& c : safe) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == '_';
    if (!ok) c = '_';
  }
  return zero_pad(label, digits(num_classes - 1)) + "_" + safe;
}

ExportJpegResult export_fashion_mnist_jpeg(const ExportJpegOptions& opt) {
  OFA_CHECK(!opt.out_dir.empty(), "export_jpeg: no output folder given");
  OFA_CHECK(opt.quality >= 1 && opt.quality <= 100, "export_jpeg: quality must be in [1, 100], got ", opt.quality);
  std::string out = opt.out_dir;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  const fs::path final_dir(out), tmp_dir(out + ".tmp");
  std::error_code ec;
  OFA_CHECK(!fs::exists(final_dir, ec), "export_jpeg: ", final_dir.string(),
            " already exists; remove it or choose another output folder");
  OFA_CHECK(!fs::exists(tmp_dir, ec), "export_jpeg: ", tmp_dir.string(),
            " exists (left by an interrupted export?); remove it first");
  const FashionMnistSplit train_split = parse_split(opt.train_split, "train_split");
  const FashionMnistSplit val_split = parse_split(opt.val_split, "val_split");
  const std::string data_dir = opt.data_dir.empty() ? fashion_mnist_dir() : opt.data_dir;

  const auto& names = fashion_mnist_classes();
  ExportJpegResult res;
  for (size_t i = 0; i < names.size(); ++i)
    res.class_folders.push_back(class_folder_name(static_cast<int64_t>(i), names[i], static_cast<int64_t>(names.size())));

  try {
    FashionMnist train(train_split, data_dir);
    FashionMnist val = val_split == train_split ? train : FashionMnist(val_split, data_dir);
    fs::create_directories(tmp_dir, ec);
    OFA_CHECK(!ec, "export_jpeg: cannot create ", tmp_dir.string(), ": ", ec.message());
    if (opt.progress) *opt.progress << "exporting Fashion-MNIST from " << data_dir << " to " << tmp_dir.string() << "\n";
    res.train_images = write_split(train, tmp_dir / "train", res.class_folders, opt, "train (" + opt.train_split + ")");
    res.val_images = write_split(val, tmp_dir / "val", res.class_folders, opt, "val (" + opt.val_split + ")");
    {
      std::ofstream f(tmp_dir / "classes.txt");
      for (size_t i = 0; i < names.size(); ++i) f << res.class_folders[i] << '\t' << i << '\t' << names[i] << '\n';
      f.close();
      OFA_CHECK(f.good(), "export_jpeg: cannot write ", (tmp_dir / "classes.txt").string());
    }
    fs::rename(tmp_dir, final_dir, ec);
    OFA_CHECK(!ec, "export_jpeg: cannot rename ", tmp_dir.string(), " to ", final_dir.string(), ": ", ec.message());
  } catch (...) {
    std::error_code ec2;
    fs::remove_all(tmp_dir, ec2);  // never leave a partial tree behind
    throw;
  }
  if (opt.progress) *opt.progress << "done: " << final_dir.string() << "\n";
  return res;
}

}  // namespace ofa::data
