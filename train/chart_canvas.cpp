#include "train/chart_canvas.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "data/opencv_view.h"

namespace sg::train {
namespace {

std::string px(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", value);
  return text;
}

std::string stroke_attributes(const Stroke& stroke) {
  if (stroke.colour.empty()) return " stroke=\"none\"";
  std::string attributes = " stroke=\"" + stroke.colour + "\" stroke-width=\"" + px(stroke.width) + "\"";
  if (stroke.dash > 0) attributes += " stroke-dasharray=\"" + px(stroke.dash) + " " + px(stroke.gap) + "\"";
  return attributes;
}

std::string tooltip_element(const std::string& tooltip) {
  return tooltip.empty() ? "" : "<title>" + xml_escape(tooltip) + "</title>";
}

// "#rrggbb" -> RGB (the canvas image is RGB).
cv::Scalar colour_of(const std::string& colour) {
  unsigned r = 0, g = 0, b = 0;
  SG_CHECK(colour.size() == 7 && colour[0] == '#' && std::sscanf(colour.c_str() + 1, "%2x%2x%2x", &r, &g, &b) == 3,
           "chart colour '", colour, "': expected #rrggbb");
  return cv::Scalar(r, g, b);
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': escaped += "&amp;"; break;
      case '<': escaped += "&lt;"; break;
      case '>': escaped += "&gt;"; break;
      case '"': escaped += "&quot;"; break;
      case '\'': escaped += "&apos;"; break;
      default: escaped += c;
    }
  }
  return escaped;
}

// ---- SVG ---------------------------------------------------------------------------------------

SvgCanvas::SvgCanvas(int width, int height, const std::string& title) : width_(width), height_(height), title_(title) {}

void SvgCanvas::line(double x1, double y1, double x2, double y2, const Stroke& stroke) {
  body_ += "<line x1=\"" + px(x1) + "\" y1=\"" + px(y1) + "\" x2=\"" + px(x2) + "\" y2=\"" + px(y2) + "\"" +
           stroke_attributes(stroke) + "/>\n";
}

void SvgCanvas::polyline(const std::vector<std::pair<double, double>>& points, const Stroke& stroke) {
  if (points.empty()) return;
  std::string list;
  for (const auto& [x, y] : points) {
    if (!list.empty()) list += ' ';
    list.append(px(x)).append(",").append(px(y));
  }
  body_ += "<polyline points=\"" + list + "\" fill=\"none\" stroke-linejoin=\"round\"" + stroke_attributes(stroke) +
           "/>\n";
}

void SvgCanvas::rect(double x, double y, double width, double height, const std::string& fill, const Stroke& stroke,
                     const std::string& tooltip) {
  body_.append("<rect x=\"").append(px(x)).append("\" y=\"").append(px(y)).append("\" width=\"").append(px(width));
  body_.append("\" height=\"").append(px(height)).append("\" fill=\"").append(fill.empty() ? "none" : fill).append("\"");
  body_.append(stroke_attributes(stroke));
  if (tooltip.empty())
    body_.append("/>\n");
  else
    body_.append(">").append(tooltip_element(tooltip)).append("</rect>\n");
}

void SvgCanvas::circle(double cx, double cy, double r, const std::string& fill, const Stroke& stroke,
                       const std::string& tooltip) {
  body_.append("<circle cx=\"").append(px(cx)).append("\" cy=\"").append(px(cy)).append("\" r=\"").append(px(r));
  body_.append("\" fill=\"").append(fill.empty() ? "none" : fill).append("\"").append(stroke_attributes(stroke));
  if (tooltip.empty())
    body_.append("/>\n");
  else
    body_.append(">").append(tooltip_element(tooltip)).append("</circle>\n");
}

void SvgCanvas::text(double x, double y, const std::string& text, const TextStyle& style) {
  const char* anchor = style.anchor == TextAnchor::middle ? "middle" : style.anchor == TextAnchor::end ? "end" : "start";
  body_ += "<text x=\"" + px(x) + "\" y=\"" + px(y) + "\"";
  if (style.vertical) body_ += " transform=\"rotate(-90 " + px(x) + " " + px(y) + ")\"";
  body_ += std::string(" text-anchor=\"") + anchor + "\" font-size=\"" + px(style.size) + "\" fill=\"" + style.colour +
           "\"" + (style.bold ? " font-weight=\"bold\"" : "") + ">" + xml_escape(text) + "</text>\n";
}

void SvgCanvas::vertical_gradient(double x, double y, double width, double height, const std::string& bottom_colour,
                                  const std::string& top_colour, const Stroke& outline) {
  const std::string id = "gradient" + std::to_string(gradients_++);
  body_ += "<defs><linearGradient id=\"" + id + "\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\"><stop offset=\"0\" stop-color=\"" +
           bottom_colour + "\"/><stop offset=\"1\" stop-color=\"" + top_colour + "\"/></linearGradient></defs>\n";
  rect(x, y, width, height, "url(#" + id + ")", outline);
}

std::string SvgCanvas::document() const {
  const std::string w = std::to_string(width_), h = std::to_string(height_);
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + w +
         "\" height=\"" + h + "\" viewBox=\"0 0 " + w + " " + h +
         "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n<title>" + xml_escape(title_) +
         "</title>\n<rect x=\"0\" y=\"0\" width=\"" + w + "\" height=\"" + h + "\" fill=\"#ffffff\"/>\n" + body_ +
         "</svg>\n";
}

// ---- raster ------------------------------------------------------------------------------------

RasterCanvas::RasterCanvas(int width, int height, double scale)
    : image_(int(std::lround(width * scale)), int(std::lround(height * scale)), 3, 255), scale_(scale) {
  SG_CHECK(width > 0 && height > 0 && scale > 0, "RasterCanvas: bad size ", width, "x", height, " at scale ", scale);
}

namespace {

// Fixed-point coordinates (4 fractional bits) for OpenCV's anti-aliased drawing.
constexpr int kShift = 4;
cv::Point fixed(double x, double y, double scale) {
  return {int(std::lround(x * scale * (1 << kShift))), int(std::lround(y * scale * (1 << kShift)))};
}
int thickness(double width, double scale) { return std::max(1, int(std::lround(width * scale))); }

// A dashed segment: dashes continue along a polyline, `phase` carries the position over.
void dashed_segment(cv::Mat& mat, double x1, double y1, double x2, double y2, const Stroke& stroke, double scale,
                    double& phase) {
  const double length = std::hypot(x2 - x1, y2 - y1);
  const double period = stroke.dash + stroke.gap;
  double t = 0;
  while (t < length) {
    const double in_period = std::fmod(phase + t, period);
    const bool drawing = in_period < stroke.dash;
    const double run = std::min(length - t, drawing ? stroke.dash - in_period : period - in_period);
    if (drawing) {
      const double a = t / length, b = (t + run) / length;
      cv::line(mat, fixed(x1 + (x2 - x1) * a, y1 + (y2 - y1) * a, scale),
               fixed(x1 + (x2 - x1) * b, y1 + (y2 - y1) * b, scale), colour_of(stroke.colour),
               thickness(stroke.width, scale), cv::LINE_AA, kShift);
    }
    t += std::max(run, 1e-6);
  }
  phase = std::fmod(phase + length, period);
}

}  // namespace

void RasterCanvas::line(double x1, double y1, double x2, double y2, const Stroke& stroke) {
  polyline({{x1, y1}, {x2, y2}}, stroke);
}

void RasterCanvas::polyline(const std::vector<std::pair<double, double>>& points, const Stroke& stroke) {
  if (stroke.colour.empty()) return;
  cv::Mat mat = data::as_mat(image_);
  double phase = 0;
  for (size_t i = 1; i < points.size(); ++i) {
    const auto [x1, y1] = points[i - 1];
    const auto [x2, y2] = points[i];
    if (stroke.dash > 0)
      dashed_segment(mat, x1, y1, x2, y2, stroke, scale_, phase);
    else
      cv::line(mat, fixed(x1, y1, scale_), fixed(x2, y2, scale_), colour_of(stroke.colour),
               thickness(stroke.width, scale_), cv::LINE_AA, kShift);
  }
}

void RasterCanvas::rect(double x, double y, double width, double height, const std::string& fill, const Stroke& stroke,
                        const std::string& /*tooltip*/) {
  cv::Mat mat = data::as_mat(image_);
  if (!fill.empty() && fill.rfind("url(", 0) != 0)
    cv::rectangle(mat, cv::Point(int(std::lround(x * scale_)), int(std::lround(y * scale_))),
                  cv::Point(int(std::lround((x + width) * scale_)) - 1, int(std::lround((y + height) * scale_)) - 1),
                  colour_of(fill), cv::FILLED);
  if (!stroke.colour.empty())
    polyline({{x, y}, {x + width, y}, {x + width, y + height}, {x, y + height}, {x, y}}, stroke);
}

void RasterCanvas::circle(double cx, double cy, double r, const std::string& fill, const Stroke& stroke,
                          const std::string& /*tooltip*/) {
  cv::Mat mat = data::as_mat(image_);
  const int radius = int(std::lround(r * scale_ * (1 << kShift)));
  if (!fill.empty()) cv::circle(mat, fixed(cx, cy, scale_), radius, colour_of(fill), cv::FILLED, cv::LINE_AA, kShift);
  if (!stroke.colour.empty())
    cv::circle(mat, fixed(cx, cy, scale_), radius, colour_of(stroke.colour), thickness(stroke.width, scale_),
               cv::LINE_AA, kShift);
}

void RasterCanvas::text(double x, double y, const std::string& text, const TextStyle& style) {
  // Hershey simplex: a capital is about 22 px high at scale 1; a font's capitals about 0.7 em.
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  const double font_scale = style.size * scale_ * 0.7 / 22.0;
  const int weight = std::max(1, int(std::lround(font_scale * (style.bold ? 2.6 : 1.5))));
  int baseline = 0;
  const cv::Size size = cv::getTextSize(text, font, font_scale, weight, &baseline);
  const double shift = style.anchor == TextAnchor::middle ? size.width / 2.0 : style.anchor == TextAnchor::end ? size.width : 0.0;
  cv::Mat mat = data::as_mat(image_);
  const cv::Scalar colour = colour_of(style.colour);
  if (!style.vertical) {
    cv::putText(mat, text, cv::Point(int(std::lround(x * scale_ - shift)), int(std::lround(y * scale_))), font,
                font_scale, colour, weight, cv::LINE_AA);
    return;
  }
  // Upwards text: draw it level on a mask, turn the mask anticlockwise, paint through it.
  cv::Mat level(size.height + baseline + 2 * weight, size.width + 2 * weight, CV_8UC1, cv::Scalar(0));
  cv::putText(level, text, cv::Point(weight, size.height + weight), font, font_scale, cv::Scalar(255), weight, cv::LINE_AA);
  cv::Mat upright;
  cv::rotate(level, upright, cv::ROTATE_90_COUNTERCLOCKWISE);
  // After the turn the baseline runs up the column at x; the text's start is at y (+ shift).
  const int left = int(std::lround(x * scale_)) - (size.height + weight);
  const int top = int(std::lround(y * scale_ + shift)) - upright.rows + weight;
  for (int r = 0; r < upright.rows; ++r) {
    const int py = top + r;
    if (py < 0 || py >= image_.height) continue;
    for (int c = 0; c < upright.cols; ++c) {
      const int pxl = left + c;
      if (pxl < 0 || pxl >= image_.width) continue;
      const double alpha = upright.at<uint8_t>(r, c) / 255.0;
      if (alpha <= 0) continue;
      uint8_t* pixel = image_.at(pxl, py);
      for (int k = 0; k < 3; ++k) pixel[k] = uint8_t(std::lround(pixel[k] * (1 - alpha) + colour[k] * alpha));
    }
  }
}

void RasterCanvas::vertical_gradient(double x, double y, double width, double height, const std::string& bottom_colour,
                                     const std::string& top_colour, const Stroke& outline) {
  const cv::Scalar bottom = colour_of(bottom_colour), top = colour_of(top_colour);
  const int x0 = int(std::lround(x * scale_)), x1 = int(std::lround((x + width) * scale_));
  const int y0 = int(std::lround(y * scale_)), y1 = int(std::lround((y + height) * scale_));
  for (int py = std::max(y0, 0); py < std::min(y1, image_.height); ++py) {
    const double share = y1 - 1 > y0 ? double(y1 - 1 - py) / double(y1 - 1 - y0) : 0.0;  // 0 at the bottom
    for (int pxl = std::max(x0, 0); pxl < std::min(x1, image_.width); ++pxl) {
      uint8_t* pixel = image_.at(pxl, py);
      for (int k = 0; k < 3; ++k) pixel[k] = uint8_t(std::lround(bottom[k] + (top[k] - bottom[k]) * share));
    }
  }
  rect(x, y, width, height, "", outline);
}

}  // namespace sg::train
