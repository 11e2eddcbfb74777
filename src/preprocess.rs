//! CLIPImageProcessor on RGB bytes: resize the shortest side (bicubic, the
//! exact fixed-point algorithm Pillow uses, so results match transformers
//! pixel for pixel), center crop, rescale, normalize.

use std::io::Cursor;
use std::ops::Range;

use image::{DynamicImage, ImageDecoder, ImageReader};

use crate::config::PreprocessConfig;
use crate::error::{Error, Result};

/// Images larger than this many pixels are refused before decoding, so one
/// huge file cannot exhaust memory (a browser tab has ~4 GB at most).
pub const MAX_PIXELS: u64 = 100_000_000;
/// Longest side over shortest side, at most.
pub const MAX_ASPECT_RATIO: usize = 10_000;
/// Bytes one decode may hold at once (the decoder's planes and output plus the
/// RGB copy), checked from the header before decoding: a browser tab's wasm
/// heap never shrinks, so a 100-megapixel CMYK JPEG (about 800 MB of planes
/// and output) is refused rather than kept for the rest of the visit.
pub const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// An 8-bit RGB image, pixels interleaved row by row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl RgbImage {
    pub fn new(width: usize, height: usize, pixels: Vec<u8>) -> Self {
        assert_eq!(pixels.len(), width * height * 3, "RGB buffer size");
        RgbImage { width, height, pixels }
    }

}

/// Decodes an image file (PNG, JPEG, WebP, GIF, BMP, TIFF), honoring EXIF
/// orientation and converting grayscale, palette, alpha and CMYK to RGB.
pub fn decode_image(bytes: &[u8], origin: &str) -> Result<RgbImage> {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        return decode_jpeg(bytes, origin);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::image(origin, format!("cannot be read: {e}")))?;
    if reader.format().is_none() {
        return Err(Error::image(origin, "is not an image (unrecognized format)"));
    }
    let mut decoder = reader.into_decoder().map_err(|e| Error::image(origin, describe(&e)))?;
    let (w, h) = decoder.dimensions();
    check_size(w as usize, h as usize, origin)?;
    let color = decoder.color_type();
    // The decoded buffer, then (unless it is 8-bit RGB already) the RGB copy.
    let rgb_copy = if color == image::ColorType::Rgb8 { 0 } else { 3 };
    check_decode_memory(w as usize, h as usize, u64::from(color.bytes_per_pixel()) + rgb_copy, &format!("{color:?}"), origin)?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| Error::image(origin, describe(&e)))?;
    image.apply_orientation(orientation);
    let rgb = image.into_rgb8();
    Ok(RgbImage::new(rgb.width() as usize, rgb.height() as usize, rgb.into_raw()))
}

/// Refuses a decode that would hold more than [`MAX_DECODE_BYTES`] at its
/// peak: `bytes_per_pixel` counts every buffer alive at once.
fn check_decode_memory(width: usize, height: usize, bytes_per_pixel: u64, kind: &str, origin: &str) -> Result<()> {
    let need = width as u64 * height as u64 * bytes_per_pixel;
    if need > MAX_DECODE_BYTES {
        let mb = |b: u64| b.div_ceil(1_000_000);
        return Err(Error::image(
            origin,
            format!(
                "is too large: {width}x{height} px {kind} would take about {} MB to decode (the limit is {} MB per image)",
                mb(need),
                mb(MAX_DECODE_BYTES)
            ),
        ));
    }
    Ok(())
}

/// Refuses images too large to decode safely, before any pixel is decoded.
fn check_size(width: usize, height: usize, origin: &str) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::image(origin, "has no pixels"));
    }
    if (width as u64) * (height as u64) > MAX_PIXELS {
        return Err(Error::image(
            origin,
            format!("is too large: {width}x{height} px (the limit is {} megapixels)", MAX_PIXELS / 1_000_000),
        ));
    }
    // Resizing the short side to 224 must keep the long side addressable on wasm32.
    if width.max(height) / width.min(height) > MAX_ASPECT_RATIO {
        return Err(Error::image(
            origin,
            format!("is {width}x{height} px: aspect ratios beyond {MAX_ASPECT_RATIO}:1 are not supported"),
        ));
    }
    Ok(())
}

/// JPEG through jpeg-decoder, converted to RGB the way Pillow does
/// (`convert("RGB")`: CMYK by `(255 - C)(255 - K) / 255` on inverted Adobe data).
fn decode_jpeg(bytes: &[u8], origin: &str) -> Result<RgbImage> {
    use jpeg_decoder::{Decoder, PixelFormat};
    let mut decoder = Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(|e| Error::image(origin, format!("is corrupt or truncated ({e})")))?;
    let info = decoder.info().ok_or_else(|| Error::image(origin, "is corrupt (no JPEG frame)"))?;
    let (w, h) = (info.width as usize, info.height as usize);
    check_size(w, h, origin)?;
    // Lossless JPEGs above 8 bits carry 2 bytes per sample whatever the format says.
    let bytes_per_pixel = match info.pixel_format {
        PixelFormat::L8 => 1,
        PixelFormat::L16 => 2,
        PixelFormat::RGB24 => 3,
        PixelFormat::CMYK32 => 4,
    };
    // Peak: the decoder's component planes (at most one byte per sample) and
    // its output together; gray then needs a new RGB buffer beside its output,
    // CMYK is converted in place. A rotated image needs one more RGB copy.
    let (peak, kind) = match info.pixel_format {
        PixelFormat::L8 => (1 + 1 + 3, "grayscale"),
        PixelFormat::L16 => (1 + 2 + 3, "16-bit grayscale"),
        PixelFormat::RGB24 => (3 + 3, "RGB"),
        PixelFormat::CMYK32 => (4 + 4, "CMYK"),
    };
    let rotated = decoder.exif_data().and_then(image::metadata::Orientation::from_exif_chunk).is_some_and(|o| o != image::metadata::Orientation::NoTransforms);
    check_decode_memory(w, h, if rotated { peak.max(6) } else { peak }, kind, origin)?;
    decoder.set_max_decoding_buffer_size(MAX_DECODE_BYTES as usize);
    let mut data = decoder.decode().map_err(|e| Error::image(origin, format!("is corrupt or truncated ({e})")))?;
    if data.len() != w * h * bytes_per_pixel {
        return Err(Error::image(origin, "uses a JPEG variant that is not supported (a lossless JPEG deeper than 8 bits?)"));
    }
    let rgb: Vec<u8> = match info.pixel_format {
        PixelFormat::RGB24 => data,
        PixelFormat::L8 => data.iter().flat_map(|&v| [v; 3]).collect(),
        // jpeg-decoder writes 16-bit samples in native byte order.
        PixelFormat::L16 => data.chunks_exact(2).flat_map(|v| [(u16::from_ne_bytes([v[0], v[1]]) >> 8) as u8; 3]).collect(),
        PixelFormat::CMYK32 => {
            // In place: pixel i's RGB goes to 3i, never past its own CMYK at 4i.
            for i in 0..w * h {
                let p = [data[4 * i], data[4 * i + 1], data[4 * i + 2], data[4 * i + 3]];
                // jpeg-decoder hands out ink amounts; Pillow's cmyk2rgb:
                // R = (255 - K) - C * (255 - K) / 255, with its rounding.
                let not_k = 255 - u32::from(p[3]);
                let mul_div_255 = |a: u32, b: u32| {
                    let t = a * b + 128;
                    ((t >> 8) + t) >> 8
                };
                for c in 0..3 {
                    data[3 * i + c] = (not_k - mul_div_255(u32::from(p[c]), not_k)) as u8;
                }
            }
            data.truncate(3 * w * h);
            data.shrink_to_fit();
            data
        }
    };
    let image = RgbImage::new(w, h, rgb);
    let orientation = decoder
        .exif_data()
        .and_then(image::metadata::Orientation::from_exif_chunk)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    if orientation == image::metadata::Orientation::NoTransforms {
        return Ok(image);
    }
    let buffer = image::RgbImage::from_raw(w as u32, h as u32, image.pixels).expect("buffer size");
    let mut dynamic = DynamicImage::ImageRgb8(buffer);
    dynamic.apply_orientation(orientation);
    let rgb = dynamic.into_rgb8();
    Ok(RgbImage::new(rgb.width() as usize, rgb.height() as usize, rgb.into_raw()))
}

fn describe(err: &image::ImageError) -> String {
    match err {
        image::ImageError::Decoding(_) | image::ImageError::IoError(_) => format!("is corrupt or truncated ({err})"),
        image::ImageError::Unsupported(_) => format!("uses an unsupported image feature ({err})"),
        image::ImageError::Limits(_) => format!("is too large to decode ({err})"),
        _ => format!("cannot be decoded ({err})"),
    }
}

/// Resize so the shortest side is `cfg.shortest_edge`, then center crop:
/// the 8-bit image CLIP sees, before normalization.
pub fn resize_and_crop(image: &RgbImage, cfg: &PreprocessConfig) -> RgbImage {
    let (w, h) = (image.width, image.height);
    let short = w.min(h);
    let long = w.max(h);
    // transformers: int(shortest_edge * long / short), truncated.
    let new_long = (cfg.shortest_edge as f64 * long as f64 / short as f64) as usize;
    let (new_w, new_h) = if w <= h { (cfg.shortest_edge, new_long) } else { (new_long, cfg.shortest_edge) };
    let (new_w, new_h) = (new_w.max(1), new_h.max(1));
    let (crop_h, crop_w) = cfg.crop_size;
    if crop_w <= new_w && crop_h <= new_h {
        let (left, top) = ((new_w - crop_w) / 2, (new_h - crop_h) / 2);
        resize_bicubic_window(image, new_w, new_h, left..left + crop_w, top..top + crop_h)
    } else {
        // A crop larger than the resized image pads; only odd configs do this.
        center_crop(&resize_bicubic(image, new_w, new_h), crop_h, crop_w)
    }
}

/// The full CLIPImageProcessor: `[3, crop_h, crop_w]` normalized floats.
pub fn preprocess(image: &RgbImage, cfg: &PreprocessConfig) -> Vec<f32> {
    let cropped = resize_and_crop(image, cfg);
    normalize(&cropped, cfg)
}

/// Rescale and normalize an 8-bit image into channel-first floats.
pub fn normalize(image: &RgbImage, cfg: &PreprocessConfig) -> Vec<f32> {
    let plane = image.width * image.height;
    let mut out = vec![0.0f32; 3 * plane];
    for (i, px) in image.pixels.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (px[c] as f32 * cfg.rescale_factor - cfg.image_mean[c]) / cfg.image_std[c];
        }
    }
    out
}

/// transformers' `center_crop`: top-left at `(size - crop) // 2`, zero
/// padding where the image is smaller than the crop.
pub fn center_crop(image: &RgbImage, crop_h: usize, crop_w: usize) -> RgbImage {
    let top = (image.height as isize - crop_h as isize).div_euclid(2);
    let left = (image.width as isize - crop_w as isize).div_euclid(2);
    let mut pixels = vec![0u8; crop_w * crop_h * 3];
    for y in 0..crop_h {
        let sy = y as isize + top;
        if sy < 0 || sy >= image.height as isize {
            continue;
        }
        for x in 0..crop_w {
            let sx = x as isize + left;
            if sx < 0 || sx >= image.width as isize {
                continue;
            }
            let src = (sy as usize * image.width + sx as usize) * 3;
            let dst = (y * crop_w + x) * 3;
            pixels[dst..dst + 3].copy_from_slice(&image.pixels[src..src + 3]);
        }
    }
    RgbImage::new(crop_w, crop_h, pixels)
}

// ---- Pillow's bicubic resampling (libImaging/Resample.c), 8-bit path ----

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// For each output index in `window`: first input index and fixed-point weights.
fn coefficients(in_size: usize, out_size: usize, window: Range<usize>) -> Vec<(usize, Vec<i32>)> {
    const SUPPORT: f64 = 2.0;
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = SUPPORT * filter_scale;
    let inv_filter_scale = 1.0 / filter_scale;
    window
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C casts truncate toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let weights: Vec<f64> = (xmin..xmax)
                .map(|x| bicubic((x as f64 - center + 0.5) * inv_filter_scale))
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    let v = w * (1u32 << PRECISION_BITS) as f64;
                    (if v < 0.0 { v - 0.5 } else { v + 0.5 }) as i32
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

fn weighted_sum(samples: impl Iterator<Item = u8>, weights: &[i32]) -> u8 {
    let mut acc: i64 = 1 << (PRECISION_BITS - 1);
    // Weights first: `zip` pulls from its first iterator first, and the
    // samples must not be read past the last weight.
    for (&w, v) in weights.iter().zip(samples) {
        acc += i64::from(v) * i64::from(w);
    }
    clip8(acc)
}

/// Pillow's `Image.resize(size, Image.BICUBIC)` for RGB images: a horizontal
/// pass into an 8-bit buffer, then a vertical pass, each skipped when that
/// side does not change.
pub fn resize_bicubic(image: &RgbImage, width: usize, height: usize) -> RgbImage {
    resize_bicubic_window(image, width, height, 0..width, 0..height)
}

/// [`resize_bicubic`] to `width` x `height`, computing only the output
/// columns `xs` and rows `ys`: the same pixels as resizing and then cropping,
/// without the time or memory for what the crop throws away (a 20000x10 strip
/// would otherwise become a 448000x224 intermediate).
pub fn resize_bicubic_window(
    image: &RgbImage,
    width: usize,
    height: usize,
    xs: Range<usize>,
    ys: Range<usize>,
) -> RgbImage {
    assert!(xs.end <= width && ys.end <= height, "window inside the output");
    let out_w = xs.len();
    // The vertical pass reads only these input rows; the horizontal pass makes only them.
    let vertical = (height != image.height).then(|| coefficients(image.height, height, ys.clone()));
    let rows = match &vertical {
        Some(v) => {
            let first = v.first().map_or(0, |(s, _)| *s);
            let last = v.last().map_or(0, |(s, w)| s + w.len());
            first..last
        }
        None => ys.clone(),
    };
    let horizontal_coeffs = (width != image.width).then(|| coefficients(image.width, width, xs.clone()));
    let mut horizontal = Vec::with_capacity(rows.len() * out_w * 3);
    for y in rows.clone() {
        let row = &image.pixels[y * image.width * 3..(y + 1) * image.width * 3];
        match &horizontal_coeffs {
            Some(coeffs) => {
                for (start, weights) in coeffs {
                    for c in 0..3 {
                        horizontal.push(weighted_sum((*start..).map(|x| row[x * 3 + c]), weights));
                    }
                }
            }
            None => horizontal.extend_from_slice(&row[xs.start * 3..xs.end * 3]),
        }
    }
    let Some(vertical) = vertical else {
        return RgbImage::new(out_w, ys.len(), horizontal);
    };
    let stride = out_w * 3;
    let mut out = Vec::with_capacity(ys.len() * stride);
    for (start, weights) in &vertical {
        let first = start - rows.start;
        for i in 0..stride {
            out.push(weighted_sum((first..).map(|y| horizontal[y * stride + i]), weights));
        }
    }
    RgbImage::new(out_w, ys.len(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizing_to_the_same_size_is_the_identity() {
        let pixels: Vec<u8> = (0..5 * 4 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let image = RgbImage::new(5, 4, pixels);
        assert_eq!(resize_bicubic(&image, 5, 4), image);
    }

    #[test]
    fn a_flat_image_stays_flat() {
        let image = RgbImage::new(7, 3, [10u8, 200, 30].repeat(21));
        let out = resize_bicubic(&image, 16, 11);
        assert!(out.pixels.chunks(3).all(|p| p == [10, 200, 30]));
    }

    #[test]
    fn a_window_equals_resize_then_crop() {
        let pixels: Vec<u8> = (0..37 * 23 * 3).map(|i| ((i * 7919) % 251) as u8).collect();
        let image = RgbImage::new(37, 23, pixels);
        for (w, h) in [(20, 50), (37, 11), (64, 23), (9, 9)] {
            let full = resize_bicubic(&image, w, h);
            let window = resize_bicubic_window(&image, w, h, 2..w - 1, 1..h - 2);
            let mut cropped = Vec::new();
            for y in 1..h - 2 {
                cropped.extend_from_slice(&full.pixels[(y * w + 2) * 3..(y * w + w - 1) * 3]);
            }
            assert_eq!(window.pixels, cropped, "{w}x{h}");
        }
    }

    #[test]
    fn a_strip_crops_the_middle_of_its_resize() {
        let pixels: Vec<u8> = (0..600 * 2 * 3).map(|i| ((i * 7919) % 253) as u8).collect();
        let image = RgbImage::new(600, 2, pixels);
        let cfg = PreprocessConfig::openai(224);
        let full = resize_bicubic(&image, 67200, 224);
        assert_eq!(resize_and_crop(&image, &cfg), center_crop(&full, 224, 224));
    }

    #[test]
    fn an_extreme_strip_is_cheap() {
        let image = RgbImage::new(20000, 3, vec![90; 20000 * 3 * 3]);
        let out = resize_and_crop(&image, &PreprocessConfig::openai(224));
        assert_eq!((out.width, out.height), (224, 224));
        assert!(out.pixels.iter().all(|&v| v == 90));
    }

    #[test]
    fn crop_takes_the_center() {
        let pixels: Vec<u8> = (0..4 * 2).flat_map(|i| [i as u8; 3]).collect();
        let image = RgbImage::new(4, 2, pixels);
        let out = center_crop(&image, 2, 2);
        assert_eq!(out.pixels.chunks(3).map(|p| p[0]).collect::<Vec<_>>(), vec![1, 2, 5, 6]);
    }
}
