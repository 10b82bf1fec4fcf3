"""English: the language reports are built and stored in (the source of every other catalogue).

Keys are stable; `{name}` placeholders are filled by service.domain.i18n.render. Every key
here must exist in every other language with the same placeholders (tests/unit/test_i18n.py).
"""

from __future__ import annotations

from typing import Final

MESSAGES: Final[dict[str, str]] = {
    # --- words -------------------------------------------------------------------------
    "severity.slight": "slight",
    "severity.moderate": "moderate",
    "severity.severe": "severe",
    "grade.bad": "bad",
    "grade.poor": "poor",
    "grade.fair": "fair",
    "grade.good": "good",
    "grade.excellent": "excellent",
    "type.Low clarity": "low clarity",
    "type.Noise": "noise",
    "type.Underexposure": "underexposure",
    "type.Overexposure": "overexposure",
    "type.Blocking artifacts": "blocking artifacts",
    "type.Edge aliasing effect": "edge aliasing effect",
    "type.Edge ringing effect": "edge ringing effect",
    "type.Out of focus blur": "out of focus blur",
    "type.Motion blur": "motion blur",
    "type.Meaningless solid color": "meaningless solid color",
    "side.top": "top",
    "side.bottom": "bottom",
    "side.left": "left",
    "side.right": "right",
    # --- regions (service/domain/regions.py) ---------------------------------------------
    "region.upper_left": "in the upper left corner",
    "region.top": "at the top",
    "region.upper_right": "in the upper right corner",
    "region.left": "on the left side",
    "region.center": "in the center",
    "region.right": "on the right side",
    "region.lower_left": "in the lower left corner",
    "region.bottom": "at the bottom",
    "region.lower_right": "in the lower right corner",
    "region.across_top": "across the top",
    "region.across_middle": "across the middle",
    "region.across_bottom": "across the bottom",
    "region.down_left": "down the left side",
    "region.down_middle": "down the middle",
    "region.down_right": "down the right side",
    "region.whole": "across the whole image",
    "region.image": "in the image",
    # --- distortion guidance: "{severity} {problem} {region}: {impact}." ------------------
    "guidance.distortion.message": "{severity} {problem} {region}: {impact}.",
    "IMG_BLURRY_EDGES.problem": "loss of clarity",
    "IMG_BLURRY_EDGES.impact": "the edges of the product look soft and fine detail is lost",
    "IMG_BLURRY_EDGES.fix": "Reshoot in good light with the camera steady and focused on the product, "
    "and upload the original file rather than an enlarged or re-saved copy.",
    "IMG_NOISY.problem": "noise",
    "IMG_NOISY.impact": "grainy speckles cover surfaces that should look smooth",
    "IMG_NOISY.fix": "Add light (daylight or a lamp) so the camera can use a low ISO; "
    "avoid digital zoom and night mode.",
    "IMG_TOO_DARK.problem": "underexposure",
    "IMG_TOO_DARK.impact": "this part of the picture is too dark to show colour and detail",
    "IMG_TOO_DARK.fix": "Add light or raise the exposure; light the product evenly from the front and sides.",
    "IMG_TOO_BRIGHT.problem": "overexposure",
    "IMG_TOO_BRIGHT.impact": "highlights are burnt out to flat white and their detail is gone",
    "IMG_TOO_BRIGHT.fix": "Lower the exposure or move the light further away; "
    "avoid direct flash and bright reflections.",
    "IMG_COMPRESSION_BLOCKS.problem": "compression blocking",
    "IMG_COMPRESSION_BLOCKS.impact": "square blocks from heavy JPEG compression break up smooth areas",
    "IMG_COMPRESSION_BLOCKS.fix": "Upload the original photo or export JPEG at quality 90 or higher; "
    "do not re-save a compressed copy.",
    "IMG_JAGGED_EDGES.problem": "edge aliasing",
    "IMG_JAGGED_EDGES.impact": "edges look stair-stepped and jagged instead of smooth",
    "IMG_JAGGED_EDGES.fix": "Upload the image at its original resolution; when resizing, use a high-quality "
    "filter (bicubic or Lanczos) and never enlarge a small image.",
    "IMG_RINGING.problem": "edge ringing",
    "IMG_RINGING.impact": "halos and ripples appear next to sharp edges",
    "IMG_RINGING.fix": "Turn down sharpening in the camera or editor and save with a higher JPEG quality.",
    "IMG_OUT_OF_FOCUS.problem": "focus blur",
    "IMG_OUT_OF_FOCUS.impact": "the product is out of focus and its details are smeared",
    "IMG_OUT_OF_FOCUS.fix": "Tap to focus on the product before shooting and keep at least the lens's "
    "minimum distance from it.",
    "IMG_MOTION_BLUR.problem": "motion blur",
    "IMG_MOTION_BLUR.impact": "camera or subject movement streaks the details",
    "IMG_MOTION_BLUR.fix": "Hold the camera still or use a tripod, add light for a faster shutter, "
    "and keep the product still.",
    "IMG_SOLID_COLOR_AREA.problem": "empty solid-colour area",
    "IMG_SOLID_COLOR_AREA.impact": "a flat area of solid colour carries no information about the product",
    "IMG_SOLID_COLOR_AREA.fix": "Crop the empty area so the product fills the frame, "
    "or remove the placeholder or overlay.",
    "distortion.expected.impact": "this is the plain white background the marketplace asks for",
    # --- overall ----------------------------------------------------------------------------
    "IMG_LOW_OVERALL_QUALITY.message": "The overall picture quality is {grade}, "
    "although no single defect stands out.",
    "IMG_LOW_OVERALL_QUALITY.fix": "Reshoot the product in good, even light with a steady, focused camera "
    "and upload the original file.",
    # --- marketplace rules (service/domain/compliance.py): rule, measured message, fix --------
    "guidance.compliance.message": "{message} ({rule})",
    "IMG_LOW_RESOLUTION.rule": "longest side at least {minimum} px",
    "IMG_LOW_RESOLUTION.measured": "The longest side is {side} px",
    "IMG_LOW_RESOLUTION.fix": "Upload a larger original: at least the minimum size on the longest side.",
    "IMG_BELOW_ZOOM_SIZE.rule": "longest side at least {minimum} px (recommended for zoom)",
    "IMG_BELOW_ZOOM_SIZE.measured": "The longest side is {side} px",
    "IMG_BELOW_ZOOM_SIZE.fix": "Upload at least 1000 px on the longest side so shoppers can zoom.",
    "IMG_NOT_WHITE_BACKGROUND.rule": "pure white background: at least {share} of the border pixels "
    "RGB >= {level}",
    "IMG_NOT_WHITE_BACKGROUND.measured": "{share} of the border pixels are white "
    "(median border colour RGB {colour})",
    "IMG_NOT_WHITE_BACKGROUND.fix": "Shoot on, or cut the product out onto, a pure white (RGB 255) "
    "background.",
    "IMG_PRODUCT_TOO_SMALL.rule": "product fills at least {share} of the frame",
    "IMG_PRODUCT_TOO_SMALL.not_checked": "Not checked: the background is not plain enough to find the "
    "product",
    "IMG_PRODUCT_TOO_SMALL.none": "No product found: the image is a plain background",
    "IMG_PRODUCT_TOO_SMALL.measured": "The product spans {share} of the frame (box {box})",
    "IMG_PRODUCT_TOO_SMALL.fix": "Crop tighter or move closer so the product fills at least 85% of the "
    "frame.",
    "IMG_JPEG_QUALITY_LOW.rule": "JPEG quality at least {minimum}",
    "IMG_JPEG_QUALITY_LOW.not_jpeg": "Not a JPEG ({format}): the rule does not apply",
    "IMG_JPEG_QUALITY_LOW.not_checked": "Not checked: the JPEG uses non-standard quantization tables",
    "IMG_JPEG_QUALITY_LOW.measured": "The JPEG was saved at quality {quality}",
    "IMG_JPEG_QUALITY_LOW.fix": "Export the JPEG at quality 90 or higher, or upload the camera original.",
    "IMG_HAS_BORDER.rule": "no borders or frames",
    "IMG_HAS_BORDER.none": "No border found",
    "IMG_HAS_BORDER.measured": "A uniform RGB {colour} border runs along the edges ({sides})",
    "IMG_HAS_BORDER.fix": "Remove the frame or bars around the photo; crop to the picture itself.",
    "IMG_TOO_MANY_PIXELS.rule": "at most {maximum} megapixels",
    "IMG_TOO_MANY_PIXELS.measured": "The image has {value} megapixels",
    "IMG_TOO_MANY_PIXELS.fix": "Resize the image to at most 64 megapixels.",
    "IMG_FILE_TOO_LARGE.rule": "file size at most {maximum}",
    "IMG_FILE_TOO_LARGE.measured": "The file is {value}",
    "IMG_FILE_TOO_LARGE.fix": "Save the image at a smaller file size (at most 16 MB), e.g. JPEG quality 90.",
    "IMG_FORMAT_NOT_ALLOWED.rule": "file format one of {formats}",
    "IMG_FORMAT_NOT_ALLOWED.measured": "The file is a {format}",
    "IMG_FORMAT_NOT_ALLOWED.fix": "Save the photo in one of the formats the marketplace accepts, "
    "JPEG where in doubt.",
    "IMG_TEXT_OR_WATERMARK.rule": "no text, logos, watermarks or promotional overlays",
    "IMG_TEXT_OR_WATERMARK.not_checked": "Not checked: this version cannot detect text or watermarks yet; "
    "review the image yourself",
    "IMG_TEXT_OR_WATERMARK.fix": "Remove text, logos, watermarks and promotional overlays from the photo.",
    "IMG_TEXT_OR_WATERMARK.none": "No text, logo or watermark found",
    "IMG_TEXT_OR_WATERMARK.measured": "Text, a logo or a watermark found in {count} place(s) (boxes {boxes})",
    # --- faces (service/domain/scene.py): blur on a face -----------------------------------
    "IMG_FACE_BLURRED.problem": "blur on a face",
    "IMG_FACE_BLURRED.impact": "the face looks soft and its features are smeared",
    "IMG_FACE_BLURRED.fix": "Focus on the face (tap it on a phone), hold the camera still and add light "
    "for a faster shutter.",
    # --- verdict reasons (service/domain/verdict.py) -----------------------------------------
    "verdict.required_failed": "required rule failed: {code}",
    "verdict.recommended_failed": "recommendation not met: {code}",
    "verdict.rule_failed": "rule failed: {code}",
    "verdict.grade": "quality grade is {grade}",
    "verdict.key_distortion": "key distortion: {severity} {distortion} {region}",
    "verdict.severe_distortion": "severe distortion: {severity} {distortion} {region}",
    # --- pipeline loss analysis (service/domain/loss.py) ------------------------------------
    "LOSS_SHARPNESS.message": "The processing step removed {percent}% of the edge sharpness.",
    "LOSS_SHARPNESS.fix": "Resize with a high-quality filter (Lanczos) and do not downscale and upscale "
    "again; add light output sharpening after resizing.",
    "LOSS_BLOCKING.message": "The processing step added JPEG blocking: block edges are {factor}x as "
    "visible as in the original.",
    "LOSS_BLOCKING.fix": "Raise the transcoder's JPEG quality to 90 or more, or serve WebP/AVIF at a "
    "higher quality setting.",
    "LOSS_FIDELITY.message": "The processed image differs visibly from the original "
    "(PSNR {psnr} dB, SSIM {ssim}).",
    "LOSS_FIDELITY.fix": "Use a higher quality setting in the processing step and avoid repeated "
    "re-encoding.",
    "LOSS_DISTORTION_ADDED.message": "The processing step added {severity} {distortion} {region}.",
    "LOSS_DISTORTION_WORSENED.message": "The processing step made the {distortion} {region} worse "
    "({before} -> {after}).",
    "LOSS_NONE.message": "The processing step kept the image's quality: no visible loss found.",
    "LOSS_NONE.fix": "Nothing to do.",
}
