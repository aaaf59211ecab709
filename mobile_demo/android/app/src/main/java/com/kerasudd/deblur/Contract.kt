package com.kerasudd.deblur

import android.graphics.Bitmap
import org.json.JSONObject
import kotlin.math.roundToInt

/**
 * The JSON contract `python -m export` writes beside each .tflite
 * (keras_udd/export/contract.py): tensor names, tensor index, dtype, layout, colour
 * order, value range and the smallest accepted size. Pre/post-processing is
 * read from it, as mobile_demo/contract.py (the reference) does:
 * uint8 v -> v / 255 * (high - low) + low; output y -> clip to [low, high]
 * -> (y - low) / (high - low) * 255, rounded.
 */
class Contract(
    val file: String,
    val signatureKey: String,
    val input: TensorSpec,
    val output: TensorSpec,
    val minHeight: Int,
    val minWidth: Int,
) {
    class TensorSpec(
        val name: String,
        val index: Int,
        val tensorName: String,
        val low: Float,
        val high: Float,
    )

    /** RGB float image, H x W x 3 row-major. */
    class Image(val data: FloatArray, val height: Int, val width: Int) {
        init {
            require(data.size == height * width * 3) { "data is not H x W x 3" }
        }
    }

    /** ARGB_8888 bitmap -> H x W x 3 RGB in the input range. */
    fun preprocess(bitmap: Bitmap): Image {
        val w = bitmap.width
        val h = bitmap.height
        val pixels = IntArray(w * h)
        bitmap.getPixels(pixels, 0, w, 0, 0, w, h)
        val scale = (input.high - input.low) / 255f
        val data = FloatArray(w * h * 3)
        for (p in pixels.indices) {
            val c = pixels[p]
            data[3 * p] = ((c shr 16) and 0xff) * scale + input.low
            data[3 * p + 1] = ((c shr 8) and 0xff) * scale + input.low
            data[3 * p + 2] = (c and 0xff) * scale + input.low
        }
        return Image(data, h, w)
    }

    /** H x W x 3 in the output range -> opaque ARGB_8888 bitmap. */
    fun postprocess(image: Image): Bitmap {
        val scale = 255f / (output.high - output.low)
        val pixels = IntArray(image.height * image.width)
        fun level(v: Float): Int = ((v.coerceIn(output.low, output.high) - output.low) * scale).roundToInt()
        for (p in pixels.indices) {
            val r = level(image.data[3 * p])
            val g = level(image.data[3 * p + 1])
            val b = level(image.data[3 * p + 2])
            pixels[p] = (0xff shl 24) or (r shl 16) or (g shl 8) or b
        }
        return Bitmap.createBitmap(pixels, image.width, image.height, Bitmap.Config.ARGB_8888)
    }

    companion object {
        fun parse(json: String): Contract {
            val doc = JSONObject(json)
            require(doc.getString("artifact") == "tflite") { "not the contract of a TFLite model" }
            val inputs = doc.getJSONArray("inputs")
            val outputs = doc.getJSONArray("outputs")
            require(inputs.length() == 1 && outputs.length() == 1) { "expected one input and one output" }
            val sizes = doc.getJSONObject("sizes")
            return Contract(
                file = doc.getString("file"),
                signatureKey = doc.getString("signature_key"),
                input = spec(inputs.getJSONObject(0)),
                output = spec(outputs.getJSONObject(0)),
                minHeight = sizes.getInt("min_height"),
                minWidth = sizes.getInt("min_width"),
            )
        }

        private fun spec(entry: JSONObject): TensorSpec {
            val what = entry.getString("name")
            require(entry.getString("dtype") == "float32") { "$what: this app feeds float32" }
            require(entry.getString("layout") == "NHWC") { "$what: this app feeds NHWC" }
            require(entry.getString("color") == "RGB") { "$what: this app feeds RGB" }
            val range = entry.getJSONArray("range")
            val low = range.getDouble(0).toFloat()
            val high = range.getDouble(1).toFloat()
            require(high > low) { "$what: empty range" }
            return TensorSpec(what, entry.getInt("index"), entry.getString("tensor_name"), low, high)
        }
    }
}
