//! A posteriorgram picture (PNG) a person can read at a glance. Top to bottom: a title, the waveform,
//! the decoded phones as boxes over their aligned spans, then the posteriorgram itself (one row per
//! class, the CTC blank on top and set apart, probability as viridis colour, each decoded span
//! outlined on its phone's row), then the time axis in seconds. Row names sit on the left, the colour
//! scale on the right.
//!
//! Time maps to x linearly. Long recordings are squeezed to [`PictureOptions::max_plot_width_px`]:
//! a pixel column then shows the highest probability of the frames it covers, so short peaks survive.

use std::io::Write;

use image::codecs::png::PngEncoder;
use image::{ImageEncoder, Rgb, RgbImage};

use super::colormap::viridis;
use super::text::{Align, TextPainter};
use super::Inspection;
use crate::ctc::PhoneSpan;

/// How the picture is sized. The defaults make a 3-second clip about 1400 × 900 px.
#[derive(Clone, Debug, PartialEq)]
pub struct PictureOptions {
    /// Horizontal scale in pixels per second. Default 400: 4 px per 10 ms frame, wide enough to see
    /// single frames.
    pub pixels_per_second: f32,
    /// Narrowest plot in pixels; shorter clips are stretched to it. Default 640.
    pub min_plot_width_px: u32,
    /// Widest plot in pixels; longer recordings are squeezed to it. Default 4000 (100 s at the
    /// default scale).
    pub max_plot_width_px: u32,
    /// Height of one class row in pixels; names are drawn at ~0.85 of it. Default 14.
    pub row_height_px: u32,
    /// Height of the waveform strip in pixels. Default 80.
    pub waveform_height_px: u32,
}

impl Default for PictureOptions {
    fn default() -> Self {
        PictureOptions {
            pixels_per_second: 400.0,
            min_plot_width_px: 640,
            max_plot_width_px: 4000,
            row_height_px: 14,
            waveform_height_px: 80,
        }
    }
}

/// Blank space around the picture's content, px.
const PADDING_PX: u32 = 12;
/// Height of the title band, px.
const TITLE_HEIGHT_PX: u32 = 28;
/// Height of the decoded-phones strip, px.
const SPANS_HEIGHT_PX: u32 = 24;
/// Vertical gap between strips, px.
const STRIP_GAP_PX: u32 = 8;
/// Gap between the blank's row and the phones' rows, px.
const BLANK_GAP_PX: u32 = 5;
/// Height of the time axis (ticks and labels), px.
const AXIS_HEIGHT_PX: u32 = 30;
/// Space between row names and the plot, px.
const GUTTER_GAP_PX: u32 = 8;
/// Width reserved right of the plot (after the repeated row names) for the colour scale and its
/// labels, px.
const COLORBAR_AREA_PX: u32 = 64;
/// Darkening of the line between two rows: enough to follow a row across a wide picture, too little
/// to mistake for a probability.
const ROW_SEPARATOR_SHADE: f32 = 0.75;
/// Width of the colour scale's bar, px.
const COLORBAR_WIDTH_PX: u32 = 14;
/// Closest two labelled time ticks may be, px.
const MIN_TICK_SPACING_PX: f64 = 80.0;
/// Text sizes, px.
const TITLE_FONT_PX: f32 = 16.0;
const LABEL_FONT_PX: f32 = 12.0;

const WHITE: [u8; 3] = [255, 255, 255];
const INK: [u8; 3] = [40, 40, 40];
const FAINT_INK: [u8; 3] = [110, 110, 110];
const GRID_LINE: [u8; 3] = [225, 225, 225];
/// Where there is no frame (the audio's tail shorter than a frame, or no frames at all): not a
/// colour of the probability scale, which would read as "probability 0".
const NO_FRAME: [u8; 3] = [238, 238, 238];
const WAVE_COLOR: [u8; 3] = [52, 101, 164];
/// Decoded phone boxes alternate between two tints so neighbours stay apart; silence is grey.
const SPAN_FILLS: [[u8; 3]; 2] = [[255, 224, 178], [255, 204, 153]];
const SILENCE_FILL: [u8; 3] = [228, 228, 228];
const SPAN_BORDER: [u8; 3] = [150, 110, 60];
/// Outline of a decoded span on its phone's row: visible on both ends of viridis.
const SPAN_OUTLINE: [u8; 3] = [255, 64, 64];

/// Where everything goes in the picture, in pixels from the top-left corner. Computed by
/// [`PictureLayout::new`] exactly as [`write_png`] draws, so tests and other tools can find a cell.
#[derive(Clone, Debug, PartialEq)]
pub struct PictureLayout {
    /// Picture width.
    pub width_px: u32,
    /// Picture height.
    pub height_px: u32,
    /// Left edge of the plot (waveform, spans and posteriorgram share it).
    pub plot_left_px: u32,
    /// Width of the phone names repeated right of the plot.
    pub right_names_width_px: u32,
    /// Width of the plot.
    pub plot_width_px: u32,
    /// Top of the waveform strip.
    pub waveform_top_px: u32,
    /// Top of the decoded-phones strip.
    pub spans_top_px: u32,
    /// Top of the blank's row; the phones' rows start a few pixels below its end (see
    /// [`row_top_px`](Self::row_top_px)).
    pub grid_top_px: u32,
    /// Bottom of the last row.
    pub grid_bottom_px: u32,
    /// Height of one row.
    pub row_height_px: u32,
    /// Seconds shown per pixel column.
    pub seconds_per_px: f64,
    /// Where the plot's left edge is in the recording, seconds ([`Inspection::start_s`]): the
    /// time axis is labelled in the recording's timeline.
    pub start_s: f64,
}

impl PictureLayout {
    /// The layout for `inspection` with `options`.
    pub fn new(inspection: &Inspection, options: &PictureOptions) -> Self {
        let painter = TextPainter::new();
        Self::with_painter(inspection, options, &painter)
    }

    fn with_painter(
        inspection: &Inspection,
        options: &PictureOptions,
        painter: &TextPainter,
    ) -> Self {
        let duration_s = shown_duration_s(inspection);
        let natural_width = (duration_s * options.pixels_per_second.max(1.0) as f64).round();
        let plot_width_px = (natural_width as u32).clamp(
            options.min_plot_width_px.max(1),
            options.max_plot_width_px.max(1),
        );
        let width_of = |name: &str| painter.width(name, LABEL_FONT_PX).ceil() as u32;
        let phone_names = inspection.posteriors.phone_names().iter();
        let right_names_width_px = phone_names.clone().map(|n| width_of(n)).max().unwrap_or(0);
        let left_names_width_px = ["waveform", "decoded", "time (s)"]
            .into_iter()
            .map(width_of)
            .max()
            .unwrap_or(0)
            .max(right_names_width_px);
        let plot_left_px = PADDING_PX + left_names_width_px + GUTTER_GAP_PX;
        let row_height_px = options.row_height_px.max(4);
        let waveform_top_px = PADDING_PX + TITLE_HEIGHT_PX;
        let spans_top_px = waveform_top_px + options.waveform_height_px + STRIP_GAP_PX;
        let grid_top_px = spans_top_px + SPANS_HEIGHT_PX + STRIP_GAP_PX;
        let num_classes = inspection.posteriors.num_classes() as u32;
        let grid_bottom_px = grid_top_px
            + num_classes * row_height_px
            + if num_classes > 1 { BLANK_GAP_PX } else { 0 };
        PictureLayout {
            width_px: plot_left_px
                + plot_width_px
                + GUTTER_GAP_PX
                + right_names_width_px
                + COLORBAR_AREA_PX
                + PADDING_PX,
            height_px: grid_bottom_px + AXIS_HEIGHT_PX + PADDING_PX,
            plot_left_px,
            right_names_width_px,
            plot_width_px,
            waveform_top_px,
            spans_top_px,
            grid_top_px,
            grid_bottom_px,
            row_height_px,
            seconds_per_px: duration_s / plot_width_px as f64,
            start_s: inspection.start_s,
        }
    }

    /// Top of the row of class `class` (0 = the blank).
    pub fn row_top_px(&self, class: usize) -> u32 {
        let gap = if class > 0 { BLANK_GAP_PX } else { 0 };
        self.grid_top_px + class as u32 * self.row_height_px + gap
    }

    /// The x coordinate of time `time_s` (fractional; the plot's left edge is time 0).
    pub fn x_of_time(&self, time_s: f64) -> f64 {
        self.plot_left_px as f64 + time_s / self.seconds_per_px
    }

    /// Bottom of the waveform strip.
    fn waveform_bottom_px(&self) -> u32 {
        self.spans_top_px - STRIP_GAP_PX
    }
}

/// Seconds the plot spans: the audio or the frames, whichever is longer (frames stop short of the
/// audio's end by up to one analysis window), and never zero.
fn shown_duration_s(inspection: &Inspection) -> f64 {
    inspection
        .wave
        .duration_s()
        .max(inspection.posteriors.duration_s())
        .max(1e-3)
}

impl PictureOptions {
    /// Check the sizes: a plot is at most 20000 px wide, rows 4–200 px, at most 10000 px per second.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(self.pixels_per_second.is_finite()
            && (1.0..=MAX_PIXELS_PER_SECOND).contains(&self.pixels_per_second))
        {
            return Err(format!(
                "pixels per second must be in 1..={MAX_PIXELS_PER_SECOND}, got {}",
                self.pixels_per_second
            ));
        }
        if !(16..=self.max_plot_width_px).contains(&self.min_plot_width_px)
            || self.max_plot_width_px > MAX_PICTURE_SIDE_PX
        {
            return Err(format!(
                "plot widths must satisfy 16 ≤ min ({}) ≤ max ({}) ≤ {MAX_PICTURE_SIDE_PX} px",
                self.min_plot_width_px, self.max_plot_width_px
            ));
        }
        if !(4..=200).contains(&self.row_height_px) || self.waveform_height_px > 2000 {
            return Err(format!(
                "row height must be 4..=200 px and the waveform strip at most 2000 px, got {} and {}",
                self.row_height_px, self.waveform_height_px
            ));
        }
        Ok(())
    }
}

/// Largest horizontal scale: 10 px per 1 ms.
pub const MAX_PIXELS_PER_SECOND: f32 = 10_000.0;
/// Longest side of the plot, px.
pub const MAX_PICTURE_SIDE_PX: u32 = 20_000;

/// Draw the posteriorgram of `inspection` and write it as PNG.
pub fn write_png(
    inspection: &Inspection,
    options: &PictureOptions,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    options.validate().map_err(|reason| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("invalid picture options: {reason}"),
        )
    })?;
    let image = render(inspection, options);
    PngEncoder::new(out)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| match e {
            image::ImageError::IoError(io) => io,
            other => std::io::Error::other(other.to_string()),
        })
}

/// The picture as pixels.
fn render(inspection: &Inspection, options: &PictureOptions) -> RgbImage {
    let painter = TextPainter::new();
    let layout = PictureLayout::with_painter(inspection, options, &painter);
    let mut image = RgbImage::from_pixel(layout.width_px, layout.height_px, Rgb(WHITE));
    draw_title(&mut image, inspection, &layout, &painter);
    draw_time_grid(&mut image, &layout, &painter);
    draw_waveform(&mut image, inspection, &layout, &painter);
    draw_spans(&mut image, inspection, &layout, &painter);
    draw_posteriorgram(&mut image, inspection, &layout, &painter);
    draw_colorbar(&mut image, &layout, &painter);
    image
}

/// Fill the rectangle `[x0, x1) × [y0, y1)`, clipped to the image.
fn fill_rect(image: &mut RgbImage, (x0, y0): (i64, i64), (x1, y1): (i64, i64), color: [u8; 3]) {
    let (width, height) = (image.width() as i64, image.height() as i64);
    for y in y0.max(0)..y1.min(height) {
        for x in x0.max(0)..x1.min(width) {
            image.put_pixel(x as u32, y as u32, Rgb(color));
        }
    }
}

/// A one-pixel rectangle outline around `[x0, x1) × [y0, y1)`.
fn outline_rect(image: &mut RgbImage, (x0, y0): (i64, i64), (x1, y1): (i64, i64), color: [u8; 3]) {
    fill_rect(image, (x0, y0), (x1, y0 + 1), color);
    fill_rect(image, (x0, y1 - 1), (x1, y1), color);
    fill_rect(image, (x0, y0), (x0 + 1, y1), color);
    fill_rect(image, (x1 - 1, y0), (x1, y1), color);
}

fn draw_title(
    image: &mut RgbImage,
    inspection: &Inspection,
    layout: &PictureLayout,
    painter: &TextPainter,
) {
    let posteriors = &inspection.posteriors;
    let shown = if inspection.start_s > 0.0 {
        format!(
            "{:.2}–{:.2} s",
            inspection.start_s,
            inspection.start_s + inspection.wave.duration_s()
        )
    } else {
        format!("{:.2} s", inspection.wave.duration_s())
    };
    let title = format!(
        "{}  ·  {shown}  ·  {} frames of {} ms  ·  {} phones + blank",
        inspection.title,
        posteriors.num_frames(),
        (posteriors.frame_shift_s() * 1e3).round(),
        posteriors.num_classes().saturating_sub(1),
    );
    let y = (PADDING_PX + TITLE_HEIGHT_PX / 2 - 3) as f32;
    painter.draw(
        image,
        &title,
        (layout.plot_left_px as f32, y),
        TITLE_FONT_PX,
        INK,
        Align::Left,
    );
}

/// A step between labelled ticks that keeps labels at least [`MIN_TICK_SPACING_PX`] apart.
fn tick_step_s(seconds_per_px: f64) -> f64 {
    const STEPS_S: [f64; 16] = [
        0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0,
    ];
    let min_step_s = MIN_TICK_SPACING_PX * seconds_per_px;
    STEPS_S
        .iter()
        .copied()
        .find(|&step| step >= min_step_s)
        .unwrap_or_else(|| (min_step_s / 600.0).ceil() * 600.0)
}

/// Decimals that show every multiple of `step_s` exactly (0.25 s ticks need two: 0.25, 0.50, 0.75).
fn tick_decimals(step_s: f64) -> usize {
    (0..3)
        .find(|&d| {
            let scaled = step_s * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-9
        })
        .unwrap_or(3)
}

/// Time ticks and labels under the posteriorgram, with faint lines through the waveform and spans.
fn draw_time_grid(image: &mut RgbImage, layout: &PictureLayout, painter: &TextPainter) {
    let step_s = tick_step_s(layout.seconds_per_px);
    let decimals = tick_decimals(step_s);
    let minor_step_s = step_s / if step_s == 0.25 { 5.0 } else { 2.0 };
    // Ticks at multiples of the step in the recording's timeline; positions in the plot's.
    let start_s = layout.start_s;
    let end_s = start_s + layout.plot_width_px as f64 * layout.seconds_per_px;
    let axis_y = layout.grid_bottom_px as i64;
    let mut index = (start_s / minor_step_s - 1e-9).ceil().max(0.0) as u64;
    loop {
        let time_s = index as f64 * minor_step_s;
        if time_s > end_s + 1e-9 {
            break;
        }
        let x = layout.x_of_time(time_s - start_s).round() as i64;
        let major = (time_s / step_s - (time_s / step_s).round()).abs() < 1e-6;
        if major {
            let top = layout.waveform_top_px as i64;
            fill_rect(
                image,
                (x, top),
                (x + 1, layout.grid_top_px as i64 - 2),
                GRID_LINE,
            );
            fill_rect(image, (x, axis_y), (x + 1, axis_y + 6), INK);
            // Labels at the plot's ends are pushed inwards, clear of the "time (s)" caption.
            let label = format!("{time_s:.decimals$}");
            let half_width = painter.width(&label, LABEL_FONT_PX) / 2.0;
            let plot_right = (layout.plot_left_px + layout.plot_width_px) as f32;
            let label_x = (x as f32)
                .max(layout.plot_left_px as f32 + half_width - 2.0)
                .min(plot_right + 2.0 - half_width);
            painter.draw(
                image,
                &label,
                (label_x, (axis_y + 15) as f32),
                LABEL_FONT_PX,
                INK,
                Align::Center,
            );
        } else {
            fill_rect(image, (x, axis_y), (x + 1, axis_y + 3), FAINT_INK);
        }
        index += 1;
    }
    painter.draw(
        image,
        "time (s)",
        (
            (layout.plot_left_px - GUTTER_GAP_PX) as f32,
            (axis_y + 15) as f32,
        ),
        LABEL_FONT_PX,
        FAINT_INK,
        Align::Right,
    );
}

/// The smallest peak the waveform strip is scaled to: −60 dBFS at int16 scale.
const WAVEFORM_FLOOR: f32 = 32.768;

/// The waveform as a min/max envelope per pixel column, scaled to its peak.
fn draw_waveform(
    image: &mut RgbImage,
    inspection: &Inspection,
    layout: &PictureLayout,
    painter: &TextPainter,
) {
    let top = layout.waveform_top_px as f64;
    let bottom = layout.waveform_bottom_px() as f64;
    let middle = (top + bottom) / 2.0;
    let half_height = (bottom - top) / 2.0 - 1.0;
    painter.draw(
        image,
        "waveform",
        ((layout.plot_left_px - GUTTER_GAP_PX) as f32, middle as f32),
        LABEL_FONT_PX,
        FAINT_INK,
        Align::Right,
    );
    let samples = &inspection.wave.samples;
    let rate = inspection.wave.sample_rate_hz as f64;
    // Scaled to its peak, but never by more than 60 dB: a silent file (digital zeros, or the
    // ±1 LSB noise phonrec fills them with) draws flat, not as a full-scale block.
    let peak = samples.iter().fold(WAVEFORM_FLOOR, |m, s| m.max(s.abs()));
    let plot_left = layout.plot_left_px as i64;
    fill_rect(
        image,
        (plot_left, middle as i64),
        (plot_left + layout.plot_width_px as i64, middle as i64 + 1),
        GRID_LINE,
    );
    if peak <= 0.0 {
        return;
    }
    for column in 0..layout.plot_width_px as usize {
        let first = ((column as f64 * layout.seconds_per_px * rate) as usize).min(samples.len());
        let last = (((column + 1) as f64 * layout.seconds_per_px * rate).ceil() as usize)
            .clamp(first, samples.len());
        // One sample from the column before joins neighbouring columns into a line when the
        // picture is stretched to more columns than there are samples.
        let chunk = &samples[first.saturating_sub(1)..last];
        if chunk.is_empty() {
            continue;
        }
        let (low, high) = chunk
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &s| (lo.min(s), hi.max(s)));
        let y_high = (middle - high as f64 / peak as f64 * half_height).floor() as i64;
        let y_low = (middle - low as f64 / peak as f64 * half_height).ceil() as i64;
        let x = plot_left + column as i64;
        fill_rect(
            image,
            (x, y_high),
            (x + 1, y_low.max(y_high + 1)),
            WAVE_COLOR,
        );
    }
}

/// The pixel columns `[x0, x1)` of a span's box, at least 2 wide, kept inside the plot: a part of
/// a recording ([`Inspection::window`]) may cut a phone at either edge.
fn span_columns(layout: &PictureLayout, span: &PhoneSpan) -> (i64, i64) {
    let left = layout.plot_left_px as i64;
    let right = left + layout.plot_width_px as i64;
    let x0 = (layout.x_of_time(span.start_s as f64).round() as i64)
        .min(right - 2)
        .max(left);
    let x1 = (layout.x_of_time(span.end_s as f64).round() as i64)
        .min(right)
        .max(x0 + 2);
    (x0, x1)
}

/// The decoded phones as labelled boxes over their spans.
fn draw_spans(
    image: &mut RgbImage,
    inspection: &Inspection,
    layout: &PictureLayout,
    painter: &TextPainter,
) {
    let top = layout.spans_top_px as i64;
    let bottom = top + SPANS_HEIGHT_PX as i64;
    let middle = (top + bottom) as f32 / 2.0;
    painter.draw(
        image,
        "decoded",
        ((layout.plot_left_px - GUTTER_GAP_PX) as f32, middle),
        LABEL_FONT_PX,
        FAINT_INK,
        Align::Right,
    );
    let silence = inspection
        .posteriors
        .phone_names()
        .iter()
        .position(|name| name == crate::phones::SILENCE);
    for (index, span) in inspection.spans.iter().enumerate() {
        let (x0, x1) = span_columns(layout, span);
        let fill = if Some(span.phone.index()) == silence {
            SILENCE_FILL
        } else {
            SPAN_FILLS[index % SPAN_FILLS.len()]
        };
        fill_rect(image, (x0, top), (x1, bottom), fill);
        outline_rect(image, (x0, top), (x1, bottom), SPAN_BORDER);
        let name = inspection.span_name(span);
        let room = (x1 - x0 - 2) as f32;
        // Shrink a name that does not fit its box, down to a size still readable; drop it below that.
        if let Some(size) = [LABEL_FONT_PX, 10.0, 8.0]
            .into_iter()
            .find(|&size| painter.width(name, size) <= room)
        {
            painter.draw(
                image,
                name,
                ((x0 + x1) as f32 / 2.0, middle),
                size,
                INK,
                Align::Center,
            );
        }
    }
}

/// Row names, the probability cells and the outlines of the decoded spans.
fn draw_posteriorgram(
    image: &mut RgbImage,
    inspection: &Inspection,
    layout: &PictureLayout,
    painter: &TextPainter,
) {
    let posteriors = &inspection.posteriors;
    let row_height = layout.row_height_px as i64;
    let plot_left = layout.plot_left_px as i64;
    let plot_right = plot_left + layout.plot_width_px as i64;
    let label_font_px = (layout.row_height_px as f32 * 0.86).min(LABEL_FONT_PX);
    for (class, name) in posteriors.phone_names().iter().enumerate() {
        let top = layout.row_top_px(class) as i64;
        let middle = top as f32 + row_height as f32 / 2.0;
        let left_names_x = (layout.plot_left_px - GUTTER_GAP_PX) as f32;
        let right_names_x = (plot_right + GUTTER_GAP_PX as i64) as f32;
        painter.draw(
            image,
            name,
            (left_names_x, middle),
            label_font_px,
            INK,
            Align::Right,
        );
        painter.draw(
            image,
            name,
            (right_names_x, middle),
            label_font_px,
            INK,
            Align::Left,
        );
        // Beyond the last frame (the audio's unanalysed tail) the row shows no data.
        fill_rect(
            image,
            (plot_left, top),
            (plot_right, top + row_height),
            NO_FRAME,
        );
    }

    let frames = posteriors.num_frames();
    let shift_s = posteriors.frame_shift_s();
    let log_probs = posteriors.log_probs();
    for column in 0..layout.plot_width_px as usize {
        let start_s = column as f64 * layout.seconds_per_px;
        let end_s = start_s + layout.seconds_per_px;
        let first = (start_s / shift_s).floor() as usize;
        if first >= frames {
            break;
        }
        let last = ((end_s / shift_s).ceil() as usize).clamp(first + 1, frames);
        let x = plot_left + column as i64;
        for class in 0..posteriors.num_classes() {
            let best = (first..last)
                .map(|frame| log_probs[[frame, class]])
                .fold(f32::NEG_INFINITY, f32::max);
            let top = layout.row_top_px(class) as i64;
            fill_rect(
                image,
                (x, top),
                (x + 1, top + row_height),
                viridis(best.exp()),
            );
        }
    }

    // A darker line at the bottom of each row.
    for class in 0..posteriors.num_classes() {
        let y = layout.row_top_px(class) + layout.row_height_px - 1;
        for x in layout.plot_left_px..layout.plot_left_px + layout.plot_width_px {
            let pixel = image.get_pixel_mut(x, y);
            for channel in pixel.0.iter_mut() {
                *channel = (*channel as f32 * ROW_SEPARATOR_SHADE).round() as u8;
            }
        }
    }

    for span in &inspection.spans {
        if span.phone.index() >= posteriors.num_classes() {
            continue;
        }
        let (x0, x1) = span_columns(layout, span);
        let top = layout.row_top_px(span.phone.index()) as i64;
        outline_rect(image, (x0, top), (x1, top + row_height), SPAN_OUTLINE);
    }
}

/// The colour scale right of the posteriorgram, labelled 0, 0.5 and 1.
fn draw_colorbar(image: &mut RgbImage, layout: &PictureLayout, painter: &TextPainter) {
    let left = (layout.plot_left_px
        + layout.plot_width_px
        + GUTTER_GAP_PX
        + layout.right_names_width_px
        + 16) as i64;
    let right = left + COLORBAR_WIDTH_PX as i64;
    let top = layout.grid_top_px as i64;
    let bottom = layout.grid_bottom_px as i64;
    let height = (bottom - top).max(1);
    for y in top..bottom {
        let value = (bottom - 1 - y) as f32 / (height - 1).max(1) as f32;
        fill_rect(image, (left, y), (right, y + 1), viridis(value));
    }
    for (value, label) in [(0.0, "0"), (0.5, "0.5"), (1.0, "1")] {
        let y = bottom - 1 - (value * (height - 1) as f32).round() as i64;
        fill_rect(image, (right, y), (right + 4, y + 1), INK);
        painter.draw(
            image,
            label,
            ((right + 7) as f32, y as f32),
            LABEL_FONT_PX,
            INK,
            Align::Left,
        );
    }
    painter.draw(
        image,
        "prob",
        ((left + right) as f32 / 2.0, (top - 12) as f32),
        LABEL_FONT_PX,
        FAINT_INK,
        Align::Center,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_keep_labels_apart() {
        // 400 px/s: 0.2 s = 80 px.
        assert_eq!(tick_step_s(1.0 / 400.0), 0.2);
        // 4000 px for 10 minutes: 80 px = 12 s -> 15 s.
        assert_eq!(tick_step_s(600.0 / 4000.0), 15.0);
        // Beyond the table: whole multiples of 10 minutes (8000 s -> 8400 s).
        assert_eq!(tick_step_s(100.0), 8400.0);
    }

    #[test]
    fn tick_labels_show_each_step_exactly() {
        assert_eq!(tick_decimals(0.25), 2);
        assert_eq!(tick_decimals(0.2), 1);
        assert_eq!(tick_decimals(0.05), 2);
        assert_eq!(tick_decimals(15.0), 0);
        let labels: Vec<String> = (1..4)
            .map(|k| format!("{:.*}", tick_decimals(0.25), k as f64 * 0.25))
            .collect();
        assert_eq!(labels, ["0.25", "0.50", "0.75"]);
    }
}
