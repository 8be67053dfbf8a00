//! Text on pictures: DejaVu Sans (ASCII subset, bundled in `font/` with its license) rasterised with
//! anti-aliasing by `ab_glyph`.

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use image::RgbImage;

/// DejaVu Sans 2.37 cut to printable ASCII plus `· – — …` (`pyftsubset --unicodes=U+0020-007E,U+00B7,
/// U+2013,U+2014,U+2026 --no-hinting`), 10 kB instead of 757 kB. License: `font/LICENSE`.
const FONT_BYTES: &[u8] = include_bytes!("font/DejaVuSans-ascii.ttf");

/// Share of the font size from the baseline to the middle of lowercase and capital letters, used to
/// centre a line on a y coordinate (DejaVu Sans: x-height 0.55 em, cap height 0.73 em).
const MIDLINE_EM: f32 = 0.32;

/// Horizontal placement of text relative to the x coordinate given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Align {
    Left,
    Center,
    Right,
}

/// Draws and measures text in the bundled font.
pub(super) struct TextPainter {
    font: FontRef<'static>,
}

impl TextPainter {
    pub(super) fn new() -> Self {
        TextPainter {
            font: FontRef::try_from_slice(FONT_BYTES)
                .expect("the bundled font is a valid TrueType file"),
        }
    }

    /// Width of `text` at `size_px`, in pixels.
    pub(super) fn width(&self, text: &str, size_px: f32) -> f32 {
        let scaled = self.font.as_scaled(PxScale::from(size_px));
        let mut width = 0.0;
        let mut previous = None;
        for c in text.chars() {
            let id = self.font.glyph_id(c);
            if let Some(previous) = previous {
                width += scaled.kern(previous, id);
            }
            width += scaled.h_advance(id);
            previous = Some(id);
        }
        width
    }

    /// Draw `text` at `size_px` in `color`, vertically centred on `y_center`, placed by `align` at `x`.
    /// Pixels outside the image are skipped; the text blends into what is underneath.
    pub(super) fn draw(
        &self,
        image: &mut RgbImage,
        text: &str,
        (x, y_center): (f32, f32),
        size_px: f32,
        color: [u8; 3],
        align: Align,
    ) {
        let scale = PxScale::from(size_px);
        let scaled = self.font.as_scaled(scale);
        let mut caret = match align {
            Align::Left => x,
            Align::Center => x - self.width(text, size_px) / 2.0,
            Align::Right => x - self.width(text, size_px),
        };
        // Whole-pixel baseline and start keep the glyphs crisp.
        caret = caret.round();
        let baseline = (y_center + MIDLINE_EM * size_px).round();
        let mut previous = None;
        for c in text.chars() {
            let id = self.font.glyph_id(c);
            if let Some(previous) = previous {
                caret += scaled.kern(previous, id);
            }
            let glyph = id.with_scale_and_position(scale, point(caret, baseline));
            if let Some(outline) = self.font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                outline.draw(|gx, gy, coverage| {
                    let px = bounds.min.x as i64 + gx as i64;
                    let py = bounds.min.y as i64 + gy as i64;
                    blend(image, px, py, color, coverage);
                });
            }
            caret += scaled.h_advance(id);
            previous = Some(id);
        }
    }
}

/// Mix `color` into the pixel at (x, y) with weight `alpha` in [0, 1]; outside the image does nothing.
fn blend(image: &mut RgbImage, x: i64, y: i64, color: [u8; 3], alpha: f32) {
    if x < 0 || y < 0 || x >= image.width() as i64 || y >= image.height() as i64 {
        return;
    }
    let alpha = alpha.clamp(0.0, 1.0);
    let pixel = image.get_pixel_mut(x as u32, y as u32);
    for (channel, &target) in pixel.0.iter_mut().zip(&color) {
        *channel = (*channel as f32 + (target as f32 - *channel as f32) * alpha).round() as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_width_and_leaves_ink() {
        let painter = TextPainter::new();
        assert!(painter.width("<blk>", 12.0) > 20.0);
        assert_eq!(painter.width("", 12.0), 0.0);
        let mut image = RgbImage::from_pixel(60, 20, image::Rgb([255, 255, 255]));
        painter.draw(&mut image, "sh", (2.0, 10.0), 14.0, [0, 0, 0], Align::Left);
        let dark = image.pixels().filter(|p| p.0[0] < 128).count();
        assert!(dark > 10, "only {dark} dark pixels");
    }
}
