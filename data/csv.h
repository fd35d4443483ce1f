#pragma once
// A small RFC 4180 CSV reader and writer for the PANDA tables (train.csv, test.csv, folds).
//
// Why our own: Debian's libcsv (3.0.3, a C callback API last released in 2013) reports no line
// numbers, which every error here must give, and libfccp (fast-cpp-csv-parser, a 2016 snapshot)
// fixes the column count at compile time and throws its own exception types. The format is
// small enough to read in one page.
//
// Reads: comma-separated fields; fields in double quotes may hold commas, line breaks and
// doubled quotes (""); LF or CRLF line ends; a UTF-8 byte-order mark at the start is skipped;
// blank lines are skipped. Every error names the file and the 1-based line.
#include <string>
#include <string_view>
#include <vector>

namespace sg::data {

struct CsvRecord {
  std::vector<std::string> fields;
  int line = 0;  // 1-based line of the file where the record starts
};

// A file whose first record is the header.
struct CsvTable {
  std::string path;
  std::vector<std::string> header;  // names with surrounding spaces removed
  int header_line = 0;
  std::vector<CsvRecord> rows;

  // Index of a header column, or -1.
  int find_column(std::string_view name) const;
  // Index of a header column; an sg::Error naming the file and the columns it has when absent,
  // or naming both positions when it appears twice.
  int require_column(std::string_view name) const;
  // The field of `row` in column `column`; an sg::Error naming the file and line when the row is
  // too short.
  const std::string& field(const CsvRecord& row, int column) const;
};

// Parses CSV text; `source` names it in errors (a path).
std::vector<CsvRecord> parse_csv(std::string_view text, const std::string& source);

// Reads a file with a header row. A missing or unreadable file, an empty file (no header) or a
// malformed record is an sg::Error naming the file.
CsvTable read_csv(const std::string& path);

// One field as CSV: quoted (with quotes doubled) when it holds a comma, a quote or a line break.
std::string csv_field(std::string_view value);

}  // namespace sg::data
