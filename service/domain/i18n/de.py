"""German (Deutsch): the same keys and placeholders as en.py.

Sie-form, marketplace vocabulary as Amazon.de and eBay.de use it. Adjectives are kept out of
declension (severity follows the noun in brackets) so one template fits every distortion.
"""

from __future__ import annotations

from typing import Final

MESSAGES: Final[dict[str, str]] = {
    # --- words -------------------------------------------------------------------------
    "severity.slight": "leicht",
    "severity.moderate": "mittel",
    "severity.severe": "stark",
    "grade.bad": "schlecht",
    "grade.poor": "mangelhaft",
    "grade.fair": "befriedigend",
    "grade.good": "gut",
    "grade.excellent": "ausgezeichnet",
    "type.Low clarity": "geringe Klarheit",
    "type.Noise": "Bildrauschen",
    "type.Underexposure": "Unterbelichtung",
    "type.Overexposure": "Überbelichtung",
    "type.Blocking artifacts": "Blockartefakte",
    "type.Edge aliasing effect": "Treppeneffekt an Kanten",
    "type.Edge ringing effect": "Überschwinger an Kanten",
    "type.Out of focus blur": "Fokusunschärfe",
    "type.Motion blur": "Bewegungsunschärfe",
    "type.Meaningless solid color": "bedeutungslose einfarbige Fläche",
    "side.top": "oben",
    "side.bottom": "unten",
    "side.left": "links",
    "side.right": "rechts",
    # --- regions ---------------------------------------------------------------------------
    "region.upper_left": "in der oberen linken Ecke",
    "region.top": "am oberen Rand",
    "region.upper_right": "in der oberen rechten Ecke",
    "region.left": "auf der linken Seite",
    "region.center": "in der Bildmitte",
    "region.right": "auf der rechten Seite",
    "region.lower_left": "in der unteren linken Ecke",
    "region.bottom": "am unteren Rand",
    "region.lower_right": "in der unteren rechten Ecke",
    "region.across_top": "quer über den oberen Bildteil",
    "region.across_middle": "quer durch die Bildmitte",
    "region.across_bottom": "quer über den unteren Bildteil",
    "region.down_left": "entlang der linken Seite",
    "region.down_middle": "senkrecht durch die Mitte",
    "region.down_right": "entlang der rechten Seite",
    "region.whole": "im gesamten Bild",
    "region.image": "im Bild",
    # --- distortion guidance -----------------------------------------------------------------
    "guidance.distortion.message": "{problem} ({severity}) {region}: {impact}.",
    "IMG_BLURRY_EDGES.problem": "Verlust an Klarheit",
    "IMG_BLURRY_EDGES.impact": "die Kanten des Produkts wirken weich und feine Details gehen verloren",
    "IMG_BLURRY_EDGES.fix": "Fotografieren Sie bei gutem Licht mit ruhiger, auf das Produkt scharf "
    "gestellter "
    "Kamera neu und laden Sie die Originaldatei statt einer vergrößerten oder erneut gespeicherten Kopie "
    "hoch.",
    "IMG_NOISY.problem": "Bildrauschen",
    "IMG_NOISY.impact": "körnige Flecken überziehen Flächen, die glatt aussehen sollten",
    "IMG_NOISY.fix": "Sorgen Sie für mehr Licht (Tageslicht oder eine Lampe), damit die Kamera einen "
    "niedrigen "
    "ISO-Wert nutzen kann; vermeiden Sie Digitalzoom und Nachtmodus.",
    "IMG_TOO_DARK.problem": "Unterbelichtung",
    "IMG_TOO_DARK.impact": "dieser Bildteil ist zu dunkel, um Farbe und Details zu zeigen",
    "IMG_TOO_DARK.fix": "Fügen Sie Licht hinzu oder erhöhen Sie die Belichtung; beleuchten Sie das Produkt "
    "gleichmäßig von vorne und von den Seiten.",
    "IMG_TOO_BRIGHT.problem": "Überbelichtung",
    "IMG_TOO_BRIGHT.impact": "Lichter sind zu flachem Weiß ausgebrannt und ihre Details fehlen",
    "IMG_TOO_BRIGHT.fix": "Verringern Sie die Belichtung oder stellen Sie das Licht weiter weg; vermeiden "
    "Sie "
    "direkten Blitz und helle Reflexionen.",
    "IMG_COMPRESSION_BLOCKS.problem": "Kompressionsblöcke",
    "IMG_COMPRESSION_BLOCKS.impact": "quadratische Blöcke einer starken JPEG-Kompression zerteilen glatte "
    "Flächen",
    "IMG_COMPRESSION_BLOCKS.fix": "Laden Sie das Originalfoto hoch oder exportieren Sie JPEG mit Qualität 90 "
    "oder höher; speichern Sie keine bereits komprimierte Kopie erneut.",
    "IMG_JAGGED_EDGES.problem": "Treppeneffekt an Kanten",
    "IMG_JAGGED_EDGES.impact": "Kanten wirken stufig und gezackt statt glatt",
    "IMG_JAGGED_EDGES.fix": "Laden Sie das Bild in Originalauflösung hoch; verwenden Sie beim Skalieren "
    "einen "
    "hochwertigen Filter (bikubisch oder Lanczos) und vergrößern Sie nie ein kleines Bild.",
    "IMG_RINGING.problem": "Überschwinger an Kanten",
    "IMG_RINGING.impact": "neben scharfen Kanten erscheinen Säume und Wellen",
    "IMG_RINGING.fix": "Reduzieren Sie die Nachschärfung in Kamera oder Bildbearbeitung und speichern Sie "
    "mit "
    "höherer JPEG-Qualität.",
    "IMG_OUT_OF_FOCUS.problem": "Fokusunschärfe",
    "IMG_OUT_OF_FOCUS.impact": "das Produkt ist nicht scharf gestellt und seine Details verschwimmen",
    "IMG_OUT_OF_FOCUS.fix": "Tippen Sie vor der Aufnahme auf das Produkt, um scharf zu stellen, und halten "
    "Sie "
    "mindestens die Naheinstellgrenze des Objektivs ein.",
    "IMG_MOTION_BLUR.problem": "Bewegungsunschärfe",
    "IMG_MOTION_BLUR.impact": "Bewegung von Kamera oder Motiv verwischt die Details",
    "IMG_MOTION_BLUR.fix": "Halten Sie die Kamera ruhig oder nutzen Sie ein Stativ, sorgen Sie für mehr "
    "Licht "
    "für eine kürzere Belichtungszeit und bewegen Sie das Produkt nicht.",
    "IMG_SOLID_COLOR_AREA.problem": "leere einfarbige Fläche",
    "IMG_SOLID_COLOR_AREA.impact": "eine flache einfarbige Fläche zeigt nichts vom Produkt",
    "IMG_SOLID_COLOR_AREA.fix": "Schneiden Sie die leere Fläche weg, damit das Produkt das Bild füllt, oder "
    "entfernen Sie den Platzhalter bzw. die Einblendung.",
    "distortion.expected.impact": "das ist der schlichte weiße Hintergrund, den der Marktplatz verlangt",
    # --- overall ----------------------------------------------------------------------------
    "IMG_LOW_OVERALL_QUALITY.message": "Die Bildqualität ist insgesamt {grade}, obwohl kein einzelner "
    "Mangel heraussticht.",
    "IMG_LOW_OVERALL_QUALITY.fix": "Fotografieren Sie das Produkt bei gutem, gleichmäßigem Licht mit "
    "ruhiger, "
    "scharf gestellter Kamera neu und laden Sie die Originaldatei hoch.",
    # --- marketplace rules ---------------------------------------------------------------------
    "guidance.compliance.message": "{message} ({rule})",
    "IMG_LOW_RESOLUTION.rule": "längste Seite mindestens {minimum} px",
    "IMG_LOW_RESOLUTION.measured": "Die längste Seite misst {side} px",
    "IMG_LOW_RESOLUTION.fix": "Laden Sie ein größeres Original hoch: mindestens die Mindestgröße auf der "
    "längsten Seite.",
    "IMG_BELOW_ZOOM_SIZE.rule": "längste Seite mindestens {minimum} px (empfohlen für die Zoomfunktion)",
    "IMG_BELOW_ZOOM_SIZE.measured": "Die längste Seite misst {side} px",
    "IMG_BELOW_ZOOM_SIZE.fix": "Laden Sie mindestens 1000 px auf der längsten Seite hoch, damit Kunden "
    "zoomen können.",
    "IMG_NOT_WHITE_BACKGROUND.rule": "rein weißer Hintergrund: mindestens {share} der Randpixel "
    "RGB >= {level}",
    "IMG_NOT_WHITE_BACKGROUND.measured": "{share} der Randpixel sind weiß (mittlere Randfarbe RGB {colour})",
    "IMG_NOT_WHITE_BACKGROUND.fix": "Fotografieren Sie auf rein weißem Hintergrund (RGB 255) oder stellen "
    "Sie "
    "das Produkt frei auf einen solchen.",
    "IMG_PRODUCT_TOO_SMALL.rule": "das Produkt füllt mindestens {share} des Bildes",
    "IMG_PRODUCT_TOO_SMALL.not_checked": "Nicht geprüft: der Hintergrund ist nicht schlicht genug, um das "
    "Produkt zu finden",
    "IMG_PRODUCT_TOO_SMALL.none": "Kein Produkt gefunden: das Bild zeigt nur Hintergrund",
    "IMG_PRODUCT_TOO_SMALL.measured": "Das Produkt füllt {share} des Bildes (Rahmen {box})",
    "IMG_PRODUCT_TOO_SMALL.fix": "Schneiden Sie enger zu oder gehen Sie näher heran, damit das Produkt "
    "mindestens 85 % des Bildes füllt.",
    "IMG_JPEG_QUALITY_LOW.rule": "JPEG-Qualität mindestens {minimum}",
    "IMG_JPEG_QUALITY_LOW.not_jpeg": "Kein JPEG ({format}): die Regel gilt nicht",
    "IMG_JPEG_QUALITY_LOW.not_checked": "Nicht geprüft: das JPEG verwendet keine "
    "Standard-Quantisierungstabellen",
    "IMG_JPEG_QUALITY_LOW.measured": "Das JPEG wurde mit Qualität {quality} gespeichert",
    "IMG_JPEG_QUALITY_LOW.fix": "Exportieren Sie das JPEG mit Qualität 90 oder höher oder laden Sie das "
    "Kameraoriginal hoch.",
    "IMG_HAS_BORDER.rule": "keine Ränder oder Rahmen",
    "IMG_HAS_BORDER.none": "Kein Rand gefunden",
    "IMG_HAS_BORDER.measured": "Ein einheitlicher Rand in RGB {colour} läuft an den Kanten entlang ({sides})",
    "IMG_HAS_BORDER.fix": "Entfernen Sie Rahmen oder Balken um das Foto; schneiden Sie auf das Bild selbst "
    "zu.",
    "IMG_TOO_MANY_PIXELS.rule": "höchstens {maximum} Megapixel",
    "IMG_TOO_MANY_PIXELS.measured": "Das Bild hat {value} Megapixel",
    "IMG_TOO_MANY_PIXELS.fix": "Verkleinern Sie das Bild auf höchstens 64 Megapixel.",
    "IMG_FILE_TOO_LARGE.rule": "Dateigröße höchstens {maximum}",
    "IMG_FILE_TOO_LARGE.measured": "Die Datei ist {value} groß",
    "IMG_FILE_TOO_LARGE.fix": "Speichern Sie das Bild mit kleinerer Dateigröße (höchstens 16 MB), z. B. als "
    "JPEG mit Qualität 90.",
    "IMG_FORMAT_NOT_ALLOWED.rule": "Dateiformat eines von {formats}",
    "IMG_FORMAT_NOT_ALLOWED.measured": "Die Datei ist ein {format}",
    "IMG_FORMAT_NOT_ALLOWED.fix": "Speichern Sie das Foto in einem Format, das der Marktplatz annimmt, "
    "im Zweifel als JPEG.",
    "IMG_TEXT_OR_WATERMARK.rule": "kein Text, keine Logos, Wasserzeichen oder Werbeeinblendungen",
    "IMG_TEXT_OR_WATERMARK.not_checked": "Nicht geprüft: diese Version kann Text und Wasserzeichen noch "
    "nicht "
    "erkennen; prüfen Sie das Bild selbst",
    "IMG_TEXT_OR_WATERMARK.fix": "Entfernen Sie Text, Logos, Wasserzeichen und Werbeeinblendungen aus dem "
    "Foto.",
    "IMG_TEXT_OR_WATERMARK.none": "Kein Text, kein Logo und kein Wasserzeichen gefunden",
    "IMG_TEXT_OR_WATERMARK.measured": "Text, ein Logo oder ein Wasserzeichen an {count} Stelle(n) gefunden "
    "(Boxen {boxes})",
    "IMG_FACE_BLURRED.problem": "Unschärfe auf einem Gesicht",
    "IMG_FACE_BLURRED.impact": "das Gesicht wirkt weich und seine Züge verschwimmen",
    "IMG_FACE_BLURRED.fix": "Stellen Sie auf das Gesicht scharf (auf dem Telefon antippen), halten Sie die "
    "Kamera ruhig und sorgen Sie für mehr Licht, damit die Belichtungszeit kürzer wird.",
    # --- verdict reasons -------------------------------------------------------------------------
    "verdict.required_failed": "Pflichtregel nicht erfüllt: {code}",
    "verdict.recommended_failed": "Empfehlung nicht erfüllt: {code}",
    "verdict.rule_failed": "Regel nicht erfüllt: {code}",
    "verdict.grade": "Qualitätsstufe ist {grade}",
    "verdict.key_distortion": "entscheidender Mangel: {distortion} ({severity}) {region}",
    "verdict.severe_distortion": "starker Mangel: {distortion} ({severity}) {region}",
    # --- pipeline loss analysis ---------------------------------------------------------------
    "LOSS_SHARPNESS.message": "Der Verarbeitungsschritt hat {percent} % der Kantenschärfe entfernt.",
    "LOSS_SHARPNESS.fix": "Skalieren Sie mit einem hochwertigen Filter (Lanczos), nicht mehrfach verkleinern "
    "und wieder vergrößern; schärfen Sie nach dem Skalieren leicht nach.",
    "LOSS_BLOCKING.message": "Der Verarbeitungsschritt hat JPEG-Blöcke hinzugefügt: Blockkanten sind "
    "{factor}-mal so sichtbar wie im Original.",
    "LOSS_BLOCKING.fix": "Erhöhen Sie die JPEG-Qualität des Transcoders auf 90 oder mehr oder liefern Sie "
    "WebP/AVIF mit höherer Qualitätseinstellung aus.",
    "LOSS_FIDELITY.message": "Das verarbeitete Bild weicht sichtbar vom Original ab (PSNR {psnr} dB, "
    "SSIM {ssim}).",
    "LOSS_FIDELITY.fix": "Verwenden Sie im Verarbeitungsschritt eine höhere Qualitätseinstellung und "
    "vermeiden Sie wiederholtes Neukodieren.",
    "LOSS_DISTORTION_ADDED.message": "Der Verarbeitungsschritt hat {distortion} ({severity}) {region} "
    "hinzugefügt.",
    "LOSS_DISTORTION_WORSENED.message": "Der Verarbeitungsschritt hat {distortion} {region} verstärkt "
    "({before} -> {after}).",
    "LOSS_NONE.message": "Der Verarbeitungsschritt hat die Bildqualität erhalten: kein sichtbarer Verlust.",
    "LOSS_NONE.fix": "Nichts zu tun.",
}
