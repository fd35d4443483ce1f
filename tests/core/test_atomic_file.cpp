// core/atomic_file.h: a write replaces the target whole or not at all, leaves no temporary behind,
// and says clearly why it failed.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tests/weights/temp_dir.h"

namespace sg {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_plain(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

int entries_in(const fs::path& folder) {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(folder)) ++count;
  return count;
}

TEST(AtomicFile, WritesANewFile) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "submission.csv";
  write_file_atomically(path, "image_id,isup_grade\na,3\n");
  EXPECT_EQ(read_file(path), "image_id,isup_grade\na,3\n");
  EXPECT_TRUE(temporaries_of(path).empty());
  EXPECT_EQ(entries_in(dir.path()), 1);
  // Permissions as fopen gives them: 0666 less the umask.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(fs::status(path).permissions(), fs::perms(0666 & ~mask));
  // Empty files and binary bytes are written as given.
  write_file_atomically(dir.path() / "empty", "");
  EXPECT_EQ(fs::file_size(dir.path() / "empty"), 0u);
  const std::string binary("\0\x01\xff\n\r\0", 6);
  write_file_atomically(dir.path() / "binary", binary);
  EXPECT_EQ(read_file(dir.path() / "binary"), binary);
}

TEST(AtomicFile, ReplacesAnExistingFile) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "folds.csv";
  write_plain(path, std::string(100000, 'x'));
  write_file_atomically(path, "short");
  EXPECT_EQ(read_file(path), "short") << "replaced, not overwritten in place (no old tail)";
  write_file_atomically(path, "again");
  EXPECT_EQ(read_file(path), "again");
  EXPECT_EQ(entries_in(dir.path()), 1);
}

TEST(AtomicFile, TheTargetChangesOnlyAtCommit) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "metrics.csv";
  write_plain(path, "old");
  AtomicFile file(path);
  EXPECT_EQ(file.target(), path);
  EXPECT_EQ(file.temporary().parent_path(), dir.path()) << "same folder: rename is atomic only within a file system";
  EXPECT_TRUE(fs::exists(file.temporary()));
  file.write("new ");
  file.write(std::string("content"));
  EXPECT_EQ(read_file(path), "old");
  EXPECT_EQ(read_file(file.temporary()), "new content");
  EXPECT_EQ(temporaries_of(path), std::vector<fs::path>{file.temporary()});
  file.commit();
  EXPECT_EQ(read_file(path), "new content");
  EXPECT_TRUE(temporaries_of(path).empty());
  EXPECT_TRUE(contains(error_of([&] { file.write("more"); }),
                       path.string() + ": write after the write was committed or failed"));
  EXPECT_TRUE(
      contains(error_of([&] { file.commit(); }), path.string() + ": commit after the write was committed or failed"));
  EXPECT_EQ(read_file(path), "new content");
}

TEST(AtomicFile, AnAbandonedWriteLeavesTheOldFileAndNoTemporary) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "grades.csv";
  write_plain(path, "old");
  // An exception between the first write and commit (the writer's own error): unwinding removes
  // the temporary.
  const std::string error = error_of([&] {
    AtomicFile file(path);
    file.write("half of the new");
    throw Error("renderer gave up");
  });
  EXPECT_EQ(error, "renderer gave up");
  EXPECT_EQ(read_file(path), "old");
  EXPECT_TRUE(temporaries_of(path).empty());
  EXPECT_EQ(entries_in(dir.path()), 1);
  // No file before: none after.
  { AtomicFile(dir.path() / "absent.csv").write("x"); }
  EXPECT_FALSE(fs::exists(dir.path() / "absent.csv"));
  EXPECT_EQ(entries_in(dir.path()), 1);
}

// RLIMIT_FSIZE makes write() fail with EFBIG the way a full disk fails with ENOSPC.
TEST(AtomicFile, AFailedWriteLeavesTheOldFileAndNoTemporary) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "model.h5";
  write_plain(path, "old");
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit limit = old_limit;
  limit.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  const std::string message = error_of([&] { write_file_atomically(path, std::string(100000, 'n')); });
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(contains(message, path.string() + ": writing " + (dir.path() / ".model.h5.tmp-").string())) << message;
  EXPECT_TRUE(contains(message, " failed: " + std::string(std::strerror(EFBIG)) + " (disk full?); " + path.string() +
                                    " is left as it was"))
      << message;
  EXPECT_EQ(read_file(path), "old");
  EXPECT_TRUE(temporaries_of(path).empty());
  EXPECT_EQ(entries_in(dir.path()), 1);
  write_file_atomically(path, "later");  // the next write still works
  EXPECT_EQ(read_file(path), "later");
}

TEST(AtomicFile, AFolderThatCannotTakeTheFileGivesAClearError) {
  testing::TempDir dir;
  // Missing folder.
  const fs::path missing = dir.path() / "no-such-folder" / "submission.csv";
  std::string message = error_of([&] { write_file_atomically(missing, "x"); });
  EXPECT_TRUE(contains(message, missing.string() + ": cannot create the temporary file " +
                                    (dir.path() / "no-such-folder" / ".submission.csv.tmp-").string()))
      << message;
  EXPECT_TRUE(contains(message, std::strerror(ENOENT))) << message;
  EXPECT_TRUE(contains(message, "(does the folder exist, and is it writable?)")) << message;
  EXPECT_FALSE(fs::exists(dir.path() / "no-such-folder"));
  // A file where the folder should be.
  write_plain(dir.path() / "file", "x");
  const fs::path under_file = dir.path() / "file" / "out.csv";
  message = error_of([&] { write_file_atomically(under_file, "x"); });
  EXPECT_TRUE(contains(message, under_file.string() + ": cannot create the temporary file ")) << message;
  EXPECT_TRUE(contains(message, std::strerror(ENOTDIR))) << message;
  // A path that names no file.
  EXPECT_TRUE(contains(error_of([&] { write_file_atomically(dir.path() / "", "x"); }), "the path names no file"));
}

TEST(AtomicFile, AReadOnlyFolderGivesAClearErrorAndKeepsTheOldFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes into read-only folders: permissions cannot make the write fail";
  testing::TempDir dir;
  const fs::path folder = dir.path() / "locked";
  fs::create_directory(folder);
  const fs::path path = folder / "folds.csv";
  write_plain(path, "old");
  fs::permissions(folder, fs::perms::owner_read | fs::perms::owner_exec);
  const std::string message = error_of([&] { write_file_atomically(path, "new"); });
  fs::permissions(folder, fs::perms::owner_all);
  EXPECT_TRUE(contains(message, path.string() + ": cannot create the temporary file ")) << message;
  EXPECT_TRUE(contains(message, std::strerror(EACCES))) << message;
  EXPECT_EQ(read_file(path), "old");
}

TEST(AtomicFile, AFailedRenameLeavesNoTemporary) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "occupied";
  fs::create_directory(path);
  write_plain(path / "inside", "x");  // a non-empty folder cannot be replaced by a file
  const std::string message = error_of([&] { write_file_atomically(path, "new"); });
  EXPECT_TRUE(contains(message, path.string() + ": renaming " + (dir.path() / ".occupied.tmp-").string())) << message;
  EXPECT_TRUE(contains(message, " into place failed: ")) << message;
  EXPECT_TRUE(contains(message, path.string() + " is left as it was")) << message;
  EXPECT_TRUE(temporaries_of(path).empty());
  EXPECT_EQ(read_file(path / "inside"), "x");
}

// Libraries that open the file by name (libtiff): they write the temporary; commit syncs and
// renames whatever is there, even when the library replaced the file instead of truncating it.
TEST(AtomicFile, ALibraryMayWriteTheTemporaryByName) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "slide.tiff";
  {
    AtomicFile file(path);
    std::FILE* library = std::fopen(file.temporary().c_str(), "wb");  // truncates the same file
    ASSERT_NE(library, nullptr);
    std::fputs("written by name", library);
    ASSERT_EQ(std::fclose(library), 0);
    file.commit();
  }
  EXPECT_EQ(read_file(path), "written by name");
  {
    AtomicFile file(path);
    ASSERT_TRUE(fs::remove(file.temporary()));  // unlink and create anew: another file
    write_plain(file.temporary(), "replaced by the library");
    file.commit();
  }
  EXPECT_EQ(read_file(path), "replaced by the library");
  EXPECT_EQ(entries_in(dir.path()), 1);
  {
    AtomicFile file(path);
    ASSERT_TRUE(fs::remove(file.temporary()));  // the library failed and removed it
    const std::string message = error_of([&] { file.commit(); });
    EXPECT_TRUE(contains(message, path.string() + ": finding ")) << message;
    EXPECT_TRUE(contains(message, std::strerror(ENOENT))) << message;
  }
  EXPECT_EQ(read_file(path), "replaced by the library");
}

TEST(AtomicFile, TemporariesFollowOneNamingScheme) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "last.h5";
  const fs::path first = unique_temporary_path(path), second = unique_temporary_path(path);
  EXPECT_NE(first, second);
  EXPECT_EQ(first.parent_path(), dir.path());
  const std::string prefix = ".last.h5.tmp-" + std::to_string(::getpid()) + "-";
  EXPECT_EQ(first.filename().string().rfind(prefix, 0), 0u) << first;
  EXPECT_EQ(temporary_writer(first, path), ::getpid());
  EXPECT_EQ(temporary_writer(dir.path() / ".last.h5.tmp-123-4", path), pid_t(123));
  for (const char* other : {"last.h5", ".last.h5.tmp-", ".last.h5.tmp-12", ".last.h5.tmp-12-", ".last.h5.tmp-1x-2",
                            ".last.h5.tmp-12-3x", ".best.h5.tmp-12-3", "last.h5.tmp-12-3", ".last.h5.tmp-0-1"})
    EXPECT_EQ(temporary_writer(dir.path() / other, path), std::nullopt) << other;
  EXPECT_EQ(temporary_writer(dir.path() / "elsewhere" / ".last.h5.tmp-12-3", path), std::nullopt);
  // A relative target: the temporary is in the current folder.
  EXPECT_EQ(unique_temporary_path("x.csv").parent_path(), fs::path("."));
  EXPECT_TRUE(temporary_writer(unique_temporary_path("x.csv"), "x.csv").has_value());
  // A long name is cut in the temporary's name, which stays within NAME_MAX (255 bytes).
  const fs::path long_name = dir.path() / (std::string(250, 'a') + ".csv");
  const fs::path temporary = unique_temporary_path(long_name);
  EXPECT_LE(temporary.filename().string().size(), 255u);
  EXPECT_EQ(temporary_writer(temporary, long_name), ::getpid());
  write_file_atomically(long_name, "long");
  EXPECT_EQ(read_file(long_name), "long");
}

TEST(AtomicFile, AbandonedTemporariesOfDeadWritersAreRemoved) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "last.h5";
  write_plain(path, "complete");
  // A child that starts a write and dies before committing (no destructors run).
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    AtomicFile* file = new AtomicFile(path);
    file->write("half");
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const std::vector<fs::path> left = temporaries_of(path);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(temporary_writer(left[0], path), child);
  // A live writer's temporary (this process's) is kept.
  AtomicFile live(path);
  EXPECT_EQ(temporaries_of(path).size(), 2u);
  EXPECT_EQ(remove_abandoned_temporaries(path), 1);
  EXPECT_EQ(temporaries_of(path), std::vector<fs::path>{live.temporary()});
  EXPECT_EQ(read_file(path), "complete");
  // Other files in the folder are never touched.
  write_plain(dir.path() / ".last.h5.tmp-notapid", "x");
  EXPECT_EQ(remove_abandoned_temporaries(path), 0);
  EXPECT_TRUE(fs::exists(dir.path() / ".last.h5.tmp-notapid"));
}

TEST(AtomicFile, ConcurrentWritersOfOneTargetNeverMix) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "tiles";
  std::vector<std::string> contents;
  for (char c = 'a'; c < 'e'; ++c) contents.push_back(std::string(200000, c));
  std::vector<std::thread> writers;
  for (const std::string& content : contents)
    writers.emplace_back([&path, &content] {
      for (int i = 0; i < 5; ++i) write_file_atomically(path, content);
    });
  for (std::thread& writer : writers) writer.join();
  const std::string final_content = read_file(path);
  EXPECT_NE(std::find(contents.begin(), contents.end(), final_content), contents.end())
      << "a mix of writers (" << final_content.size() << " bytes)";
  EXPECT_TRUE(temporaries_of(path).empty());
}

}  // namespace
}  // namespace sg
