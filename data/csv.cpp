#include "data/csv.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace sg::data {
namespace {

std::string trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  const size_t end = s.find_last_not_of(" \t");
  return std::string(s.substr(begin, end - begin + 1));
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::vector<CsvRecord> parse_csv(std::string_view text, const std::string& source) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte-order mark
  std::vector<CsvRecord> records;
  CsvRecord record;
  std::string field;
  int line = 1;
  bool record_started = false;  // something (even an empty field before a comma) was read
  size_t i = 0;
  const size_t n = text.size();

  auto end_field = [&] {
    record.fields.push_back(std::move(field));
    field.clear();
  };
  auto end_record = [&] {
    if (record_started) {
      end_field();
      records.push_back(std::move(record));
    }
    record = CsvRecord{};
    field.clear();
    record_started = false;
  };

  while (i < n) {
    const char c = text[i];
    if (!record_started) record.line = line;
    if (c == '"' && field.empty()) {
      // Quoted field: runs to the next quote that is not doubled.
      const int opened_at = line;
      record_started = true;
      ++i;
      for (;;) {
        SG_CHECK(i < n, source, ": line ", opened_at, ": quoted field is never closed (expected a closing \")");
        if (text[i] == '"') {
          if (i + 1 < n && text[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (text[i] == '\n') ++line;
        field += text[i++];
      }
      // After the closing quote: a separator, a line end or the end of the text.
      if (i < n && text[i] != ',' && text[i] != '\n' && !(text[i] == '\r' && i + 1 < n && text[i + 1] == '\n')) {
        throw Error(detail::concat(source, ": line ", line, ": unexpected character '", text[i],
                                   "' after a closing quote (expected a comma or the end of the line)"));
      }
      // A quoted empty field must still count as a field: mark it so the next comma or line end
      // does not see an "empty, unquoted" field start.
      if (i < n && text[i] == ',') {
        end_field();
        ++i;
      }
      continue;
    }
    if (c == ',') {
      record_started = true;
      end_field();
      ++i;
    } else if (c == '\n' || (c == '\r' && i + 1 < n && text[i + 1] == '\n')) {
      end_record();
      i += (c == '\r') ? 2 : 1;
      ++line;
    } else {
      record_started = true;
      field += c;
      ++i;
    }
  }
  end_record();
  return records;
}

CsvTable read_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  SG_CHECK(in, "cannot open CSV file '", path, "': ", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  SG_CHECK(!in.bad(), "cannot read CSV file '", path, "'");
  std::vector<CsvRecord> records = parse_csv(buffer.str(), path);
  SG_CHECK(!records.empty(), path, ": empty CSV file (expected a header row)");

  CsvTable table;
  table.path = path;
  table.header_line = records.front().line;
  for (const auto& name : records.front().fields) table.header.push_back(trim(name));
  table.rows.assign(std::make_move_iterator(records.begin() + 1), std::make_move_iterator(records.end()));
  return table;
}

int CsvTable::find_column(std::string_view name) const {
  for (size_t c = 0; c < header.size(); ++c)
    if (header[c] == name) return static_cast<int>(c);
  return -1;
}

int CsvTable::require_column(std::string_view name) const {
  const int c = find_column(name);
  SG_CHECK(c >= 0, path, ": line ", header_line, ": no column '", name, "' in the header (columns: ", join(header),
           ")");
  for (size_t other = c + 1; other < header.size(); ++other) {
    SG_CHECK(header[other] != name, path, ": line ", header_line, ": column '", name, "' appears twice in the header (",
             c + 1, " and ", other + 1, ")");
  }
  return c;
}

const std::string& CsvTable::field(const CsvRecord& row, int column) const {
  SG_CHECK(column >= 0 && static_cast<size_t>(column) < row.fields.size(), path, ": line ", row.line, ": ",
           row.fields.size(), " fields, expected ", header.size(), " (no value for column '",
           (column >= 0 && static_cast<size_t>(column) < header.size() ? header[column] : std::string("?")), "')");
  return row.fields[column];
}

std::string csv_field(std::string_view value) {
  if (value.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace sg::data
