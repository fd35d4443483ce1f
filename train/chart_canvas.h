#pragma once
// What the run's pictures (train/plots.h) are drawn on: the same drawing calls make an SVG
// document (text, with tooltips) or a raster image through OpenCV (for a PNG). Coordinates are
// in the picture's units, y downwards; a raster canvas multiplies them by its scale.
#include <string>
#include <utility>
#include <vector>

#include "data/image.h"

namespace sg::train {

enum class TextAnchor { start, middle, end };

struct Stroke {
  std::string colour = "#000000";  // "#rrggbb"
  double width = 1;
  double dash = 0, gap = 0;  // dash and gap lengths; 0: a solid line
};

struct TextStyle {
  double size = 12;  // font size (em), in picture units
  std::string colour = "#222222";
  TextAnchor anchor = TextAnchor::start;
  bool bold = false;
  bool vertical = false;  // rotated 90 degrees anticlockwise about (x, y), reading upwards
};

class ChartCanvas {
 public:
  virtual ~ChartCanvas() = default;
  virtual void line(double x1, double y1, double x2, double y2, const Stroke& stroke) = 0;
  // An open polyline; a gap in a series is two calls.
  virtual void polyline(const std::vector<std::pair<double, double>>& points, const Stroke& stroke) = 0;
  // fill "" or stroke.colour "" leaves that part out; the tooltip shows on hover in SVG.
  virtual void rect(double x, double y, double width, double height, const std::string& fill, const Stroke& stroke,
                    const std::string& tooltip = "") = 0;
  virtual void circle(double cx, double cy, double r, const std::string& fill, const Stroke& stroke,
                      const std::string& tooltip = "") = 0;
  // y is the text's baseline.
  virtual void text(double x, double y, const std::string& text, const TextStyle& style) = 0;
  // A rectangle filled from `bottom_colour` at its bottom to `top_colour` at its top.
  virtual void vertical_gradient(double x, double y, double width, double height, const std::string& bottom_colour,
                                 const std::string& top_colour, const Stroke& outline) = 0;
};

// An SVG document of width x height units; `title` is its <title>.
class SvgCanvas final : public ChartCanvas {
 public:
  SvgCanvas(int width, int height, const std::string& title);
  void line(double x1, double y1, double x2, double y2, const Stroke& stroke) override;
  void polyline(const std::vector<std::pair<double, double>>& points, const Stroke& stroke) override;
  void rect(double x, double y, double width, double height, const std::string& fill, const Stroke& stroke,
            const std::string& tooltip = "") override;
  void circle(double cx, double cy, double r, const std::string& fill, const Stroke& stroke,
              const std::string& tooltip = "") override;
  void text(double x, double y, const std::string& text, const TextStyle& style) override;
  void vertical_gradient(double x, double y, double width, double height, const std::string& bottom_colour,
                         const std::string& top_colour, const Stroke& outline) override;
  // The finished document.
  std::string document() const;

 private:
  std::string body_;
  int width_, height_, gradients_ = 0;
  std::string title_;
};

// An RGB image of (width x scale) x (height x scale) pixels on a white ground, drawn with
// OpenCV's anti-aliased lines and its Hershey font.
class RasterCanvas final : public ChartCanvas {
 public:
  RasterCanvas(int width, int height, double scale = 2);
  void line(double x1, double y1, double x2, double y2, const Stroke& stroke) override;
  void polyline(const std::vector<std::pair<double, double>>& points, const Stroke& stroke) override;
  void rect(double x, double y, double width, double height, const std::string& fill, const Stroke& stroke,
            const std::string& tooltip = "") override;
  void circle(double cx, double cy, double r, const std::string& fill, const Stroke& stroke,
              const std::string& tooltip = "") override;
  void text(double x, double y, const std::string& text, const TextStyle& style) override;
  void vertical_gradient(double x, double y, double width, double height, const std::string& bottom_colour,
                         const std::string& top_colour, const Stroke& outline) override;
  const data::Image& image() const { return image_; }

 private:
  data::Image image_;
  double scale_;
};

// XML text: & < > " ' escaped.
std::string xml_escape(const std::string& text);

}  // namespace sg::train
