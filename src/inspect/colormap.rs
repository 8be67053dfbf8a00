//! The viridis colormap (perceptually uniform, readable in grey and by the colour-blind) for
//! probabilities in [0, 1].
//!
//! Anchors: matplotlib 3.11.2 `colormaps["viridis"](i / 32)` for i = 0..=32, scaled to 0–255 and
//! rounded; between anchors the colour is interpolated linearly (at most ~1 level off the full table).

/// Viridis at 33 evenly spaced points, from 0 (dark purple) to 1 (yellow).
const VIRIDIS_ANCHORS: [[u8; 3]; 33] = [
    [68, 1, 84],
    [71, 13, 96],
    [72, 24, 106],
    [72, 35, 116],
    [71, 45, 123],
    [69, 55, 129],
    [66, 64, 134],
    [62, 73, 137],
    [59, 82, 139],
    [55, 91, 141],
    [51, 99, 141],
    [47, 107, 142],
    [44, 114, 142],
    [41, 122, 142],
    [38, 130, 142],
    [35, 137, 142],
    [33, 145, 140],
    [31, 152, 139],
    [31, 160, 136],
    [34, 167, 133],
    [40, 174, 128],
    [50, 182, 122],
    [63, 188, 115],
    [78, 195, 107],
    [94, 201, 98],
    [112, 207, 87],
    [132, 212, 75],
    [152, 216, 62],
    [173, 220, 48],
    [194, 223, 35],
    [216, 226, 25],
    [236, 229, 27],
    [253, 231, 37],
];

/// The viridis colour of `value`, clamped to [0, 1] (NaN counts as 0).
pub fn viridis(value: f32) -> [u8; 3] {
    let value = if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    };
    let position = value * (VIRIDIS_ANCHORS.len() - 1) as f32;
    let low = (position.floor() as usize).min(VIRIDIS_ANCHORS.len() - 2);
    let fraction = position - low as f32;
    let (a, b) = (VIRIDIS_ANCHORS[low], VIRIDIS_ANCHORS[low + 1]);
    std::array::from_fn(|c| (a[c] as f32 + (b[c] as f32 - a[c] as f32) * fraction).round() as u8)
}

/// Viridis as 256 entries (value `i / 255`), for the HTML page's canvas.
pub(super) fn viridis_table() -> Vec<[u8; 3]> {
    (0..256).map(|i| viridis(i as f32 / 255.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_anchors_are_matplotlibs() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
        assert_eq!(viridis(0.5), [33, 145, 140]);
        assert_eq!(viridis(-1.0), viridis(0.0));
        assert_eq!(viridis(f32::NAN), viridis(0.0));
        assert_eq!(viridis(2.0), viridis(1.0));
    }

    #[test]
    fn brightness_rises_monotonically() {
        let luma = |c: [u8; 3]| 0.2126 * c[0] as f32 + 0.7152 * c[1] as f32 + 0.0722 * c[2] as f32;
        let table = viridis_table();
        assert!(table.windows(2).all(|w| luma(w[1]) >= luma(w[0]) - 0.5));
    }
}
