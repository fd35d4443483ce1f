#include "data/synthetic_slides.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <mutex>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <thread>

#include "core/atomic_file.h"
#include "data/pyramid_tiff_writer.h"

namespace sg::data {

namespace {

constexpr double kPi = 3.14159265358979323846;

// splitmix64: small, fast and the same on every platform and standard library (std::
// distributions are not), so a seed gives the same slide everywhere.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * static_cast<double>(next() >> 11) * 0x1.0p-53; }
  int integer(int lo, int hi) { return lo + static_cast<int>(next() % static_cast<uint64_t>(hi - lo + 1)); }
  bool chance(double p) { return uniform(0, 1) < p; }

 private:
  uint64_t state_;
};

uint64_t hash_combine(uint64_t a, uint64_t b) {
  SplitMix64 mix(a ^ (b + 0x632be59bd9b4e019ull + (a << 6) + (a >> 2)));
  return mix.next();
}

// The stateless per-pixel hash behind the grain: a pixel's noise depends on its level-0 position
// only, so bands render identically however the image is cut.
inline uint64_t pixel_hash(uint64_t seed, uint64_t x, uint64_t y) {
  uint64_t z = seed ^ (y * 0x9e3779b97f4a7c15ull) ^ (x * 0xc2b2ae3d27d4eb4full);
  z = (z ^ (z >> 33)) * 0xff51afd7ed558ccdull;
  z = (z ^ (z >> 33)) * 0xc4ceb9fe1a85ec53ull;
  return z ^ (z >> 33);
}

struct Rgb {
  double r, g, b;
};

// H&E-like colours (RGB). Per slide, the "ink" (distance from white) of every tissue colour is
// scaled per channel, a crude stain variation that keeps the background white.
struct Palette {
  Rgb stroma{236, 178, 210};
  Rgb benign_epithelium{196, 128, 196}, benign_lumen{250, 242, 248}, benign_nuclei{110, 60, 150};
  Rgb g3_epithelium{176, 100, 182}, g3_lumen{244, 228, 242}, g3_nuclei{82, 40, 130};
  Rgb g4_nest{130, 64, 155}, g4_lumen{244, 230, 244}, g4_nuclei{70, 32, 120};
  Rgb g5_sheet{124, 62, 152}, g5_nuclei{58, 24, 104};

  void stain(SplitMix64& rng) {
    const double kr = rng.uniform(0.85, 1.12), kg = rng.uniform(0.88, 1.1), kb = rng.uniform(0.85, 1.12);
    for (Rgb* c : {&stroma, &benign_epithelium, &benign_lumen, &benign_nuclei, &g3_epithelium, &g3_lumen, &g3_nuclei,
                   &g4_nest, &g4_lumen, &g4_nuclei, &g5_sheet, &g5_nuclei}) {
      c->r = std::clamp(255 - (255 - c->r) * kr, 0.0, 255.0);
      c->g = std::clamp(255 - (255 - c->g) * kg, 0.0, 255.0);
      c->b = std::clamp(255 - (255 - c->b) * kb, 0.0, 255.0);
    }
  }
};

cv::Scalar scalar(const Rgb& c) { return cv::Scalar(std::lround(c.r), std::lround(c.g), std::lround(c.b)); }

// A tissue strip: a slightly bent band of varying width along local axis u in [-L/2, L/2],
// rotated by `angle` about (cx, cy); v runs across it.
struct Strip {
  double cx, cy, cos_a, sin_a, length, half_width;
  double bend_amp, bend_period, bend_phase, width_amp, width_period, width_phase;

  double center_v(double u) const { return bend_amp * std::sin(2 * kPi * u / bend_period + bend_phase); }
  double half_width_at(double u) const {
    const double t = std::min(1.0, std::abs(2 * u / length));
    const double taper = std::sqrt(std::max(0.0, 1 - std::pow(t, 8)));  // rounded ends
    return half_width * (1 + width_amp * std::sin(2 * kPi * u / width_period + width_phase)) * taper;
  }
  cv::Point2d to_image(double u, double v) const { return {cx + u * cos_a - v * sin_a, cy + u * sin_a + v * cos_a}; }
};

}  // namespace

// ---- the scene: shapes in level-0 coordinates, painted in order ----------------------------------

struct SyntheticSlide::Scene {
  enum class Kind : uint8_t { polygon, ellipse, polyline };
  struct Shape {
    Kind kind;
    int label;  // mask label, -1: not in the mask (pen marks)
    int thickness;
    cv::Scalar colour;
    int top, bottom;  // rows touched, inclusive
    cv::Point center;
    cv::Size axes;
    float angle;
    uint32_t first_point, point_count;  // polygon / polyline vertices in `points`
  };
  std::vector<Shape> shapes;
  std::vector<cv::Point> points;
  double cancer_area = 0, tissue_area = 0;
  uint64_t grain_seed = 0;
  // The most rows any one piece spans (an ellipse, a polygon edge, a pen segment with its caps).
  // Painting a band with this many extra rows above and below means no piece that reaches the
  // band is cut by the canvas edge, which is what makes bands join exactly (see paint()).
  int tallest_piece = 0;

  void add_polygon(const std::vector<cv::Point>& vertices, const cv::Scalar& colour, int label) {
    add_points(Kind::polygon, vertices, colour, label, 1);
  }
  void add_polyline(const std::vector<cv::Point>& vertices, const cv::Scalar& colour, int thickness) {
    add_points(Kind::polyline, vertices, colour, -1, thickness);
  }
  void add_ellipse(cv::Point2d center, double a, double b, double angle_deg, const cv::Scalar& colour, int label) {
    Shape s{};
    s.kind = Kind::ellipse;
    s.label = label;
    s.colour = colour;
    s.center = cv::Point(static_cast<int>(std::lround(center.x)), static_cast<int>(std::lround(center.y)));
    s.axes = cv::Size(std::max(1, static_cast<int>(std::lround(a))), std::max(1, static_cast<int>(std::lround(b))));
    s.angle = static_cast<float>(angle_deg);
    const int reach = std::max(s.axes.width, s.axes.height) + 2;
    s.top = s.center.y - reach;
    s.bottom = s.center.y + reach;
    tallest_piece = std::max(tallest_piece, 2 * reach);
    shapes.push_back(s);
  }

  // Paints every shape that touches rows [top, top + canvas.rows) onto canvas, whose row 0 is
  // level-0 row `top`. mask: paint labels (shapes without one are skipped) instead of colours.
  // Everything goes through cv::fillPoly. Its fill follows each edge from its true end even off the
  // canvas, but it also draws each edge with a Bresenham line clipped to the canvas, and a clipped
  // line can take a different path. So every edge is kept short (<= tallest_piece rows) and the
  // caller pads the canvas by tallest_piece rows: any edge that reaches the band is then drawn
  // unclipped, and a band comes out exactly as the same rows of the whole image.
  void paint(cv::Mat& canvas, int top, bool mask) const {
    const int bottom = top + canvas.rows - 1;
    std::vector<cv::Point> outline, quad(4);
    auto fill = [&](const std::vector<cv::Point>& polygon, const cv::Scalar& colour) {
      const cv::Point* vertices = polygon.data();
      const int count = static_cast<int>(polygon.size());
      cv::fillPoly(canvas, &vertices, &count, 1, colour, cv::LINE_8);
    };
    // An ellipse as a polygon, its vertices rounded relative to the centre (cv::ellipse2Poly
    // rounds absolute positions half-to-even, which is not the same under a shift by one row).
    auto disc = [&](cv::Point center, cv::Size axes, float angle_deg, const cv::Scalar& colour) {
      const int reach = std::max(axes.width, axes.height);
      const int steps = reach < 3 ? 4 : reach < 10 ? 12 : reach < 15 ? 20 : 72;  // OpenCV's own density
      const double angle = angle_deg * kPi / 180, ca = std::cos(angle), sa = std::sin(angle);
      outline.clear();
      for (int i = 0; i < steps; ++i) {
        const double t = 2 * kPi * i / steps, x = axes.width * std::cos(t), y = axes.height * std::sin(t);
        outline.push_back(center + cv::Point(static_cast<int>(std::lround(x * ca - y * sa)),
                                             static_cast<int>(std::lround(x * sa + y * ca))));
      }
      fill(outline, colour);
    };
    for (const Shape& s : shapes) {
      if (s.bottom < top || s.top > bottom || (mask && s.label < 0)) continue;
      const cv::Scalar colour = mask ? cv::Scalar(s.label) : s.colour;
      const cv::Point shift(0, -top);
      if (s.kind == Kind::ellipse) {
        disc(s.center + shift, s.axes, s.angle, colour);
        continue;
      }
      const cv::Point* p = points.data() + s.first_point;
      if (s.kind == Kind::polygon) {
        outline.assign(p, p + s.point_count);
        for (cv::Point& q : outline) q += shift;
        fill(outline, colour);
        continue;
      }
      // A pen stroke: a rectangle per segment and a round cap at every vertex.
      const double half = s.thickness / 2.0;
      for (uint32_t i = 0; i < s.point_count; ++i) {
        disc(p[i] + shift, cv::Size(s.thickness / 2, s.thickness / 2), 0, colour);
        if (i + 1 == s.point_count) break;
        const cv::Point2d a = p[i], b = p[i + 1], d = b - a;
        const double length = std::hypot(d.x, d.y);
        if (length == 0) continue;
        const cv::Point2d n(-d.y / length * half, d.x / length * half);
        const cv::Point2d corners[4] = {a + n, b + n, b - n, a - n};
        for (int k = 0; k < 4; ++k)
          quad[static_cast<size_t>(k)] =
              cv::Point(static_cast<int>(std::lround(corners[k].x)), static_cast<int>(std::lround(corners[k].y))) +
              shift;
        fill(quad, colour);
      }
    }
  }

 private:
  void add_points(Kind kind, const std::vector<cv::Point>& vertices, const cv::Scalar& colour, int label,
                  int thickness) {
    Shape s{};
    s.kind = kind;
    s.label = label;
    s.thickness = thickness;
    s.colour = colour;
    s.first_point = static_cast<uint32_t>(points.size());
    s.point_count = static_cast<uint32_t>(vertices.size());
    s.top = INT32_MAX;
    s.bottom = INT32_MIN;
    for (size_t i = 0; i < vertices.size(); ++i) {
      const cv::Point& p = vertices[i];
      s.top = std::min(s.top, p.y - thickness - 1);
      s.bottom = std::max(s.bottom, p.y + thickness + 1);
      const size_t next = i + 1 < vertices.size() ? i + 1 : (kind == Kind::polygon ? 0 : i);
      tallest_piece = std::max(tallest_piece, std::abs(vertices[next].y - p.y) + 2 * thickness + 2);
    }
    points.insert(points.end(), vertices.begin(), vertices.end());
    shapes.push_back(s);
  }
};

namespace {

using Scene = SyntheticSlide::Scene;

struct GleasonPatterns {
  int primary = 0, secondary = 0;  // 0: no cancer
};

GleasonPatterns parse_gleason(const std::string& score, const std::string& image_id) {
  if (score == "negative" || score == "0+0") return {};
  SG_CHECK(
      score.size() == 3 && score[1] == '+' && score[0] >= '3' && score[0] <= '5' && score[2] >= '3' && score[2] <= '5',
      "synthetic slide ", image_id, ": Gleason score '", score, "' is not negative, 0+0 or P+S with P, S in 3..5");
  return {score[0] - '0', score[2] - '0'};
}

int isup_of(GleasonPatterns g) {
  const int sum = g.primary + g.secondary;
  if (sum == 0) return 0;
  if (sum == 6) return 1;
  if (sum == 7) return g.primary == 3 ? 2 : 3;
  return sum == 8 ? 4 : 5;
}

// Mask label of a region painted as `pattern` (0 benign, 3..5 Gleason).
int label_of(bool radboud, int pattern, bool epithelium) {
  if (radboud) return pattern == 0 ? (epithelium ? 2 : 1) : pattern;
  return pattern == 0 ? 1 : 2;
}

struct Segment {
  int strip;
  double u0, u1;
  double area = 0;
  int pattern = 0;
};

// The outline of a strip between u0 and u1, with no edge longer than about 32 px (paint() needs
// short edges; the boundary shared with the next segment has the same vertices).
std::vector<cv::Point> segment_polygon(const Strip& strip, double u0, double u1) {
  constexpr double kStep = 32;
  const int steps = std::max(2, static_cast<int>(std::ceil((u1 - u0) / kStep)));
  std::vector<cv::Point> polygon;
  auto point = [&](double u, double side) {
    const cv::Point2d p = strip.to_image(u, strip.center_v(u) + side * strip.half_width_at(u));
    return cv::Point(static_cast<int>(std::lround(p.x)), static_cast<int>(std::lround(p.y)));
  };
  auto across = [&](double u, double from, double to) {  // interior points of the cut at u
    const int pieces = std::max(1, static_cast<int>(std::ceil(2 * strip.half_width_at(u) / kStep)));
    for (int j = 1; j < pieces; ++j) polygon.push_back(point(u, from + (to - from) * j / pieces));
  };
  for (int i = 0; i <= steps; ++i) polygon.push_back(point(u0 + (u1 - u0) * i / steps, +1));
  across(u1, +1, -1);
  for (int i = steps; i >= 0; --i) polygon.push_back(point(u0 + (u1 - u0) * i / steps, -1));
  across(u0, -1, +1);
  return polygon;
}

// Jittered grid of candidate centres (u, v) inside a segment with room for radius r.
template <class Place>
void scatter(SplitMix64& rng, const Strip& strip, const Segment& seg, double spacing, double reach, Place place) {
  const double hw = strip.half_width * 1.3;
  for (double u = seg.u0 + spacing / 2; u < seg.u1; u += spacing)
    for (double v = -hw; v <= hw; v += spacing) {
      const double uu = u + rng.uniform(-0.3, 0.3) * spacing, vv = v + rng.uniform(-0.3, 0.3) * spacing;
      if (uu < seg.u0 + reach * 0.75 || uu > seg.u1 - reach * 0.75) continue;
      if (std::abs(vv - strip.center_v(uu)) > strip.half_width_at(uu) - reach) continue;
      place(strip.to_image(uu, vv));
    }
}

void add_benign_gland(Scene& scene, SplitMix64& rng, const Palette& pal, cv::Point2d c, int label, double zoom) {
  const double r = zoom * rng.uniform(30, 48), a = r * rng.uniform(0.85, 1.2), b = r * rng.uniform(0.6, 0.95);
  const double angle = rng.uniform(0, 180);
  scene.add_ellipse(c, a, b, angle, scalar(pal.benign_epithelium), label);
  scene.add_ellipse(c, a * 0.72, b * 0.68, angle, scalar(pal.benign_lumen), label);
  const int nuclei = rng.integer(10, 16);
  const double rad = angle * kPi / 180;
  for (int k = 0; k < nuclei; ++k) {
    const double t = 2 * kPi * (k + rng.uniform(0, 0.5)) / nuclei;
    const double x = a * 0.86 * std::cos(t), y = b * 0.84 * std::sin(t);
    scene.add_ellipse({c.x + x * std::cos(rad) - y * std::sin(rad), c.y + x * std::sin(rad) + y * std::cos(rad)},
                      zoom * rng.uniform(3.5, 5), zoom * rng.uniform(3, 4.5), rng.uniform(0, 180),
                      scalar(pal.benign_nuclei), label);
  }
}

void add_g3_gland(Scene& scene, SplitMix64& rng, const Palette& pal, cv::Point2d c, int label, double zoom) {
  const double r = zoom * rng.uniform(12, 18), a = r * rng.uniform(0.9, 1.15), b = r * rng.uniform(0.8, 1.0);
  const double angle = rng.uniform(0, 180);
  scene.add_ellipse(c, a, b, angle, scalar(pal.g3_epithelium), label);
  scene.add_ellipse(c, a * 0.42, b * 0.42, angle, scalar(pal.g3_lumen), label);
  const int nuclei = rng.integer(6, 9);
  for (int k = 0; k < nuclei; ++k) {
    const double t = 2 * kPi * (k + rng.uniform(0, 0.4)) / nuclei;
    scene.add_ellipse({c.x + 0.72 * a * std::cos(t), c.y + 0.72 * b * std::sin(t)}, zoom * rng.uniform(3.5, 4.5),
                      zoom * rng.uniform(3, 4), rng.uniform(0, 180), scalar(pal.g3_nuclei), label);
  }
}

// Fused glands: two or three overlapping nests with small round lumina (cribriform).
void add_g4_nest(Scene& scene, SplitMix64& rng, const Palette& pal, cv::Point2d c, int label, double zoom) {
  const double r = zoom * rng.uniform(35, 52);  // lobes reach 1.6 r from the centre
  const int lobes = rng.integer(2, 3);
  for (int k = 0; k < lobes; ++k) {
    const double t = rng.uniform(0, 2 * kPi), d = k == 0 ? 0 : r * rng.uniform(0.4, 0.7);
    scene.add_ellipse({c.x + d * std::cos(t), c.y + d * std::sin(t)}, r * rng.uniform(0.7, 1.0),
                      r * rng.uniform(0.55, 0.85), rng.uniform(0, 180), scalar(pal.g4_nest), label);
  }
  const int lumina = rng.integer(5, 11);
  for (int k = 0; k < lumina; ++k) {
    const double t = rng.uniform(0, 2 * kPi), d = r * std::sqrt(rng.uniform(0, 1)) * 0.7;
    const double lr = zoom * rng.uniform(4, 8);
    scene.add_ellipse({c.x + d * std::cos(t), c.y + d * std::sin(t)}, lr, lr, 0, scalar(pal.g4_lumen), label);
  }
  const int nuclei = rng.integer(18, 32);
  for (int k = 0; k < nuclei; ++k) {
    const double t = rng.uniform(0, 2 * kPi), d = r * std::sqrt(rng.uniform(0, 1)) * 0.9;
    scene.add_ellipse({c.x + d * std::cos(t), c.y + d * std::sin(t)}, zoom * rng.uniform(3.5, 4.5),
                      zoom * rng.uniform(3, 4), rng.uniform(0, 180), scalar(pal.g4_nuclei), label);
  }
}

void add_pen_marks(Scene& scene, SplitMix64& rng, int width, int height) {
  const std::array<Rgb, 3> inks{Rgb{40, 140, 80}, Rgb{45, 70, 170}, Rgb{35, 35, 40}};
  const Rgb ink = inks[static_cast<size_t>(rng.integer(0, 2))];
  const int strokes = rng.integer(1, 3);
  for (int s = 0; s < strokes; ++s) {
    // At least 4 px: the slide's 5x5 blur leaves a 3 px line little more than a 1 px core of ink.
    const int thickness = std::max(4, static_cast<int>(height * rng.uniform(0.004, 0.009)));
    std::vector<cv::Point> line;
    if (rng.chance(0.4)) {  // a loop drawn around something
      const double cx = rng.uniform(0.2, 0.8) * width, cy = rng.uniform(0.2, 0.8) * height;
      const double a = rng.uniform(0.06, 0.15) * width, b = rng.uniform(0.08, 0.2) * height;
      const double wobble = rng.uniform(0.03, 0.08), phase = rng.uniform(0, 2 * kPi);
      for (int k = 0; k <= 72; ++k) {
        const double t = 2 * kPi * k / 68;  // a little past a full turn, as pens do
        const double f = 1 + wobble * std::sin(3 * t + phase);
        line.emplace_back(static_cast<int>(cx + a * f * std::cos(t)), static_cast<int>(cy + b * f * std::sin(t)));
      }
    } else {  // a scribble or a line
      double x = rng.uniform(0.05, 0.95) * width, y = rng.uniform(0.05, 0.95) * height;
      // Inwards, give or take a radian: a stroke started near an edge and heading out would stop
      // after a step or two (the line ends at the edge), a dot rather than a pen mark.
      double heading = std::atan2(0.5 * height - y, 0.5 * width - x) + rng.uniform(-1.0, 1.0);
      const double step = height * 0.01;
      const int steps = rng.integer(50, 110);  // a stroke, not a tick
      for (int k = 0; k < steps && x >= 0 && y >= 0 && x < width && y < height; ++k) {  // ends at the edge
        line.emplace_back(static_cast<int>(x), static_cast<int>(y));
        heading += rng.uniform(-0.25, 0.25);
        x += step * std::cos(heading);
        y += step * std::sin(heading);
      }
      if (line.size() < 2) continue;
    }
    scene.add_polyline(line, scalar(ink), thickness);
  }
}

}  // namespace

// ---- SyntheticSlide ---------------------------------------------------------------------------------

std::string synthetic_gleason_score(int isup_grade, const std::string& data_provider, uint64_t choice) {
  SG_CHECK(isup_grade >= 0 && isup_grade <= 5, "synthetic slide: ISUP grade ", isup_grade, " is not in 0..5");
  switch (isup_grade) {
    case 0:
      return data_provider == "radboud" ? "negative" : "0+0";
    case 1:
      return "3+3";
    case 2:
      return "3+4";
    case 3:
      return "4+3";
    case 4:
      return std::array<const char*, 3>{"4+4", "3+5", "5+3"}[choice % 3];
    default:
      return std::array<const char*, 3>{"4+5", "5+4", "5+5"}[choice % 3];
  }
}

SyntheticSlide::SyntheticSlide(SyntheticSlideSpec spec) : spec_(std::move(spec)), scene_(std::make_unique<Scene>()) {
  const SyntheticSlideSpec& s = spec_;
  SG_CHECK(s.data_provider == "radboud" || s.data_provider == "karolinska", "synthetic slide ", s.image_id,
           ": data provider '", s.data_provider, "' is not radboud or karolinska");
  SG_CHECK(s.width >= 256 && s.height >= 256 && s.width <= 200000 && s.height <= 200000, "synthetic slide ", s.image_id,
           ": size ", s.width, "x", s.height, " is outside 256..200000 pixels a side");
  const GleasonPatterns gleason = parse_gleason(s.gleason_score, s.image_id);
  SG_CHECK(isup_of(gleason) == s.isup_grade, "synthetic slide ", s.image_id, ": Gleason ", s.gleason_score, " is ISUP ",
           isup_of(gleason), ", not ", s.isup_grade);
  const bool radboud = s.data_provider == "radboud";

  SplitMix64 rng(hash_combine(s.seed, 0x5eedull));
  Scene& scene = *scene_;
  scene.grain_seed = rng.next();
  Palette pal;
  pal.stain(rng);

  // Strips, one per horizontal lane, at random angles (more tilted when short).
  const int strip_count = rng.integer(1, 3);
  const double lane = static_cast<double>(s.height) / strip_count;
  std::vector<Strip> strips;
  std::vector<Segment> segments;
  for (int i = 0; i < strip_count; ++i) {
    Strip st{};
    st.half_width = std::min(rng.uniform(0.18, 0.3) * lane, rng.uniform(0.08, 0.12) * s.height);
    const double angle = rng.uniform(-30, 30) * kPi / 180;
    st.cos_a = std::cos(angle);
    st.sin_a = std::sin(angle);
    double length = rng.uniform(0.55, 0.92) * s.width;
    length = std::min(length, 0.92 * s.width / std::abs(st.cos_a) - 2 * st.half_width);
    if (std::abs(st.sin_a) > 1e-3)
      length = std::min(length, 2 * (0.55 * lane - st.half_width) / std::abs(st.sin_a));  // neighbours overlap little
    st.length = std::max(length, 4 * st.half_width);
    st.cx = s.width * 0.5 + rng.uniform(-0.05, 0.05) * s.width;
    st.cy = lane * (i + 0.5) + rng.uniform(-0.08, 0.08) * lane;
    st.bend_amp = st.half_width * rng.uniform(0, 0.35);
    st.bend_period = st.length * rng.uniform(0.6, 1.5);
    st.bend_phase = rng.uniform(0, 2 * kPi);
    st.width_amp = rng.uniform(0.05, 0.15);
    st.width_period = st.length * rng.uniform(0.2, 0.5);
    st.width_phase = rng.uniform(0, 2 * kPi);
    strips.push_back(st);
    // Segments of about three widths each, at least three per strip (six per slide).
    const int pieces =
        std::max((6 + strip_count - 1) / strip_count, static_cast<int>(std::lround(st.length / (3 * st.half_width))));
    std::vector<double> cuts{-st.length / 2};
    for (int k = 1; k < pieces; ++k) cuts.push_back(-st.length / 2 + st.length * (k + rng.uniform(-0.2, 0.2)) / pieces);
    cuts.push_back(st.length / 2);
    for (int k = 0; k < pieces; ++k)
      segments.push_back({i, cuts[static_cast<size_t>(k)], cuts[static_cast<size_t>(k) + 1]});
  }
  for (Segment& seg : segments) {
    const auto polygon = segment_polygon(strips[static_cast<size_t>(seg.strip)], seg.u0, seg.u1);
    seg.area = cv::contourArea(polygon);
    scene.tissue_area += seg.area;
  }

  // Cancer segments: the share grows with the grade; the primary pattern gets about twice the
  // secondary's segments, drawn at random. The primary Gleason pattern is by definition the most
  // extensive one, and segments differ in size (a random draw once painted a 4+3 slide with as much
  // pattern 3 as pattern 4): when the primary's area is not at least 1.25 times the secondary's, the
  // primary takes the largest of the drawn segments and the secondary the smallest of the others,
  // the same numbers of each; only if that is still not enough does the primary take more
  // segments, largest first. No extra random draws: every other slide paints as before.
  if (s.isup_grade > 0) {
    constexpr std::array<double, 6> kCancerShare{0, 0.2, 0.33, 0.45, 0.55, 0.7};
    const int total = static_cast<int>(segments.size());
    const bool mixed = gleason.primary != gleason.secondary;
    int cancer = static_cast<int>(std::lround(kCancerShare[static_cast<size_t>(s.isup_grade)] * total));
    cancer = std::clamp(cancer, mixed ? 2 : 1, total - 1);
    const int secondary = mixed ? std::max(1, static_cast<int>(std::lround(cancer / 3.0))) : 0;
    std::vector<int> order(static_cast<size_t>(total));
    for (int k = 0; k < total; ++k) order[static_cast<size_t>(k)] = k;
    for (int k = total - 1; k > 0; --k)
      std::swap(order[static_cast<size_t>(k)], order[static_cast<size_t>(rng.integer(0, k))]);
    for (int k = 0; k < cancer; ++k)
      segments[static_cast<size_t>(order[static_cast<size_t>(k)])].pattern =
          k < cancer - secondary ? gleason.primary : gleason.secondary;
    const auto area_of = [&](int pattern) {
      double area = 0;
      for (const Segment& seg : segments) area += seg.pattern == pattern ? seg.area : 0.0;
      return area;
    };
    constexpr double kPrimaryMargin = 1.25;
    if (mixed && area_of(gleason.primary) < kPrimaryMargin * area_of(gleason.secondary)) {
      const auto larger = [&](int x, int y) {
        return segments[static_cast<size_t>(x)].area > segments[static_cast<size_t>(y)].area;
      };
      std::stable_sort(order.begin(), order.begin() + cancer, larger);
      for (Segment& seg : segments) seg.pattern = 0;
      for (int k = 0; k < cancer - secondary; ++k) segments[static_cast<size_t>(order[static_cast<size_t>(k)])].pattern = gleason.primary;
      std::vector<int> rest(order.begin() + (cancer - secondary), order.end());  // largest of them last
      std::stable_sort(rest.begin(), rest.end(), [&](int x, int y) { return larger(y, x); });
      for (int k = 0; k < secondary; ++k) segments[static_cast<size_t>(rest[static_cast<size_t>(k)])].pattern = gleason.secondary;
      for (size_t k = rest.size(); k-- > static_cast<size_t>(secondary) &&
                                  area_of(gleason.primary) < kPrimaryMargin * area_of(gleason.secondary);)
        segments[static_cast<size_t>(rest[k])].pattern = gleason.primary;
    }
  }

  // Paint: segment grounds, then their glands. Glands have their real size (at 0.5 um/px) on
  // slides of 2048 rows or more, and shrink on smaller ones so that they still fit the strips.
  const double zoom = std::clamp(s.height / 2048.0, 0.35, 1.0);
  for (const Segment& seg : segments) {
    const Strip& st = strips[static_cast<size_t>(seg.strip)];
    const int region_label = label_of(radboud, seg.pattern, false);
    const int gland_label = label_of(radboud, seg.pattern, true);
    if (seg.pattern != 0) scene.cancer_area += seg.area;
    scene.add_polygon(segment_polygon(st, seg.u0, seg.u1), scalar(pal.stroma), region_label);
    switch (seg.pattern) {
      case 0:
        scatter(rng, st, seg, 105 * zoom, 56 * zoom,
                [&](cv::Point2d c) { add_benign_gland(scene, rng, pal, c, gland_label, zoom); });
        break;
      case 3:
        scatter(rng, st, seg, 40 * zoom, 22 * zoom,
                [&](cv::Point2d c) { add_g3_gland(scene, rng, pal, c, gland_label, zoom); });
        break;
      case 4:
        scatter(rng, st, seg, 90 * zoom, 80 * zoom,
                [&](cv::Point2d c) { add_g4_nest(scene, rng, pal, c, gland_label, zoom); });
        break;
      default:  // 5: solid sheets (overlapping blobs, thin stroma gaps) of crowded dark nuclei
        scatter(rng, st, seg, 80 * zoom, 40 * zoom, [&](cv::Point2d c) {
          scene.add_ellipse(c, zoom * rng.uniform(45, 70), zoom * rng.uniform(35, 60), rng.uniform(0, 180),
                            scalar(pal.g5_sheet), gland_label);
        });
        scatter(rng, st, seg, 12 * zoom, 5 * zoom, [&](cv::Point2d c) {
          scene.add_ellipse(c, zoom * rng.uniform(3.5, 5), zoom * rng.uniform(3, 4.5), rng.uniform(0, 180),
                            scalar(pal.g5_nuclei), gland_label);
        });
    }
  }
  if (s.pen_marks) add_pen_marks(scene, rng, s.width, s.height);
}

SyntheticSlide::~SyntheticSlide() = default;
SyntheticSlide::SyntheticSlide(SyntheticSlide&&) noexcept = default;
SyntheticSlide& SyntheticSlide::operator=(SyntheticSlide&&) noexcept = default;

double SyntheticSlide::cancer_share() const {
  return scene_->tissue_area > 0 ? scene_->cancer_area / scene_->tissue_area : 0.0;
}

void SyntheticSlide::render_rgb(int y0, Image& band) const {
  SG_CHECK(band.width == spec_.width && band.channels == 3 && y0 >= 0 && y0 + band.height <= spec_.height,
           "synthetic slide ", spec_.image_id, ": band of ", band.width, "x", band.height, "x", band.channels,
           " at row ", y0, " does not fit a ", spec_.width, "x", spec_.height, " RGB slide");
  // Painted with scene.tallest_piece extra rows above and below (see Scene::paint); grain and
  // blur on the band and kBlur rows around it, so the blur sees the same neighbours as in one piece.
  constexpr int kBlur = 4;
  const int margin = scene_->tallest_piece + kBlur + 2;
  const int top = y0 - margin;
  cv::Mat canvas(band.height + 2 * margin, band.width, CV_8UC3, cv::Scalar(255, 255, 255));
  scene_->paint(canvas, top, false);
  cv::Mat near = canvas.rowRange(margin - kBlur, margin + band.height + kBlur);
  // Grain on tissue and ink (not on the white glass): a shared luminance part and a small
  // per-channel part, from a hash of the pixel's level-0 position.
  for (int r = 0; r < near.rows; ++r) {
    uint8_t* p = near.ptr<uint8_t>(r);
    const uint64_t y = static_cast<uint64_t>(static_cast<int64_t>(y0) - kBlur + r);
    for (int x = 0; x < near.cols; ++x, p += 3) {
      if (p[0] + p[1] + p[2] >= 750) continue;
      const uint64_t h = pixel_hash(scene_->grain_seed, static_cast<uint64_t>(x), y);
      const int luma = (static_cast<int>(h & 0xff) + static_cast<int>((h >> 8) & 0xff) - 255) * 10 / 128;
      for (int c = 0; c < 3; ++c) {
        const int chroma = (static_cast<int>((h >> (16 + 8 * c)) & 0xff) - 128) / 40;
        p[c] = static_cast<uint8_t>(std::clamp(p[c] + luma + chroma, 0, 255));
      }
    }
  }
  cv::Mat blurred;
  cv::GaussianBlur(near, blurred, cv::Size(5, 5), 0.9, 0.9, cv::BORDER_REPLICATE);  // 5x5: reaches 2 < kBlur rows
  for (int r = 0; r < band.height; ++r) std::copy_n(blurred.ptr<uint8_t>(r + kBlur), band.row_bytes(), band.row(r));
}

void SyntheticSlide::render_mask(int y0, Image& band) const {
  SG_CHECK(band.width == spec_.width && band.channels == 3 && y0 >= 0 && y0 + band.height <= spec_.height,
           "synthetic slide ", spec_.image_id, ": mask band of ", band.width, "x", band.height, "x", band.channels,
           " at row ", y0, " does not fit a ", spec_.width, "x", spec_.height, " RGB mask");
  const int margin = scene_->tallest_piece + 2;  // see Scene::paint
  cv::Mat labels(band.height + 2 * margin, band.width, CV_8UC1, cv::Scalar(0));
  scene_->paint(labels, y0 - margin, true);
  for (int r = 0; r < band.height; ++r) {
    const uint8_t* l = labels.ptr<uint8_t>(r + margin);
    uint8_t* out = band.row(r);
    for (int x = 0; x < band.width; ++x, out += 3) {
      out[0] = l[x];
      out[1] = out[2] = 0;
    }
  }
}

void SyntheticSlide::write_slide(const std::string& path, int jpeg_quality) const {
  PyramidTiffOptions options;
  options.compression = PyramidTiffOptions::Compression::jpeg;
  options.jpeg_quality = jpeg_quality;
  options.description = "slidegrade synthetic PANDA-like slide " + spec_.image_id;
  write_pyramid_tiff(
      path, spec_.width, spec_.height, 3, [this](int y0, Image& band) { render_rgb(y0, band); }, options);
}

void SyntheticSlide::write_mask(const std::string& path) const {
  PyramidTiffOptions options;
  options.compression = PyramidTiffOptions::Compression::deflate;
  options.downscale = PyramidTiffOptions::Downscale::nearest;
  options.fill = 0;
  options.description = "slidegrade synthetic label mask " + spec_.image_id + " (" + spec_.data_provider + ")";
  write_pyramid_tiff(
      path, spec_.width, spec_.height, 3, [this](int y0, Image& band) { render_mask(y0, band); }, options);
}

// ---- datasets -----------------------------------------------------------------------------------------

namespace {

std::string hex_id(uint64_t seed, uint64_t split, uint64_t index) {
  const uint64_t a = hash_combine(hash_combine(seed, split), index), b = hash_combine(a, 0x1d);
  char text[33];
  std::snprintf(text, sizeof text, "%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return text;
}

SyntheticSlideSpec plan_slide(const SyntheticDatasetOptions& options, uint64_t split, int index, int grade,
                              bool radboud) {
  SyntheticSlideSpec spec;
  spec.seed = hash_combine(hash_combine(options.seed, split), static_cast<uint64_t>(index));
  spec.image_id = hex_id(options.seed, split, static_cast<uint64_t>(index));
  spec.data_provider = radboud ? "radboud" : "karolinska";
  spec.isup_grade = grade;
  spec.gleason_score = synthetic_gleason_score(grade, spec.data_provider, hash_combine(spec.seed, 3));
  spec.width = options.width;
  spec.height = options.height;
  spec.pen_marks = SplitMix64(hash_combine(spec.seed, 7)).chance(options.pen_mark_share);
  return spec;
}

void write_csv(const std::filesystem::path& path, const std::vector<SyntheticSlideSpec>& slides, bool labels) {
  std::ostringstream out;
  out << (labels ? "image_id,data_provider,isup_grade,gleason_score\n" : "image_id,data_provider\n");
  for (const SyntheticSlideSpec& s : slides) {
    out << s.image_id << ',' << s.data_provider;
    if (labels) out << ',' << s.isup_grade << ',' << s.gleason_score;
    out << '\n';
  }
  write_file_atomically(path, out.str());
}

}  // namespace

SyntheticDataset plan_synthetic_dataset(const SyntheticDatasetOptions& options) {
  SG_CHECK(options.train_slides >= 0 && options.test_slides >= -1, "synth: slide counts must not be negative (train ",
           options.train_slides, ", test ", options.test_slides, ")");
  SyntheticDataset dataset;
  for (int i = 0; i < options.train_slides; ++i)
    dataset.train.push_back(plan_slide(options, 1, i, i % 6, (i / 6) % 2 == 0));
  const int tests = options.test_slides >= 0 ? options.test_slides : std::max(1, options.train_slides / 5);
  for (int i = 0; i < tests; ++i) dataset.test.push_back(plan_slide(options, 2, i, (i * 5 + 2) % 6, (i / 2) % 2 == 0));
  return dataset;
}

SyntheticDataset write_synthetic_dataset(const std::string& dir, const SyntheticDatasetOptions& options) {
  const SyntheticDataset dataset = plan_synthetic_dataset(options);
  const std::filesystem::path root(dir);
  for (const char* sub : {"train_images", "train_label_masks", "test_images"}) {
    std::error_code ec;
    std::filesystem::create_directories(root / sub, ec);
    SG_CHECK(!ec, (root / sub).string(), ": cannot create the directory: ", ec.message());
  }

  struct Job {
    const SyntheticSlideSpec* spec;
    bool train;
  };
  std::vector<Job> jobs;
  for (const auto& s : dataset.train) jobs.push_back({&s, true});
  for (const auto& s : dataset.test) jobs.push_back({&s, false});

  std::atomic<size_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr first_error;
  auto work = [&] {
    for (size_t j = next++; j < jobs.size(); j = next++) {
      try {
        const SyntheticSlide slide(*jobs[j].spec);
        const std::string id = jobs[j].spec->image_id;
        if (jobs[j].train) {
          slide.write_slide((root / "train_images" / (id + ".tiff")).string(), options.jpeg_quality);
          slide.write_mask((root / "train_label_masks" / (id + "_mask.tiff")).string());
        } else {
          slide.write_slide((root / "test_images" / (id + ".tiff")).string(), options.jpeg_quality);
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        next = jobs.size();  // stop the others early
      }
    }
  };
  const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  const size_t threads =
      std::min<size_t>(jobs.size(), options.threads > 0 ? static_cast<size_t>(options.threads) : hardware);
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  if (first_error) std::rethrow_exception(first_error);

  write_csv(root / "train.csv", dataset.train, true);
  write_csv(root / "test.csv", dataset.test, false);
  write_csv(root / "test_truth.csv", dataset.test, true);
  return dataset;
}

}  // namespace sg::data
