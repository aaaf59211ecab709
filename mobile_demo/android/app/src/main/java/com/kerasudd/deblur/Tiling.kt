package com.kerasudd.deblur

import com.kerasudd.deblur.Contract.Image
import kotlin.math.PI
import kotlin.math.cos
import kotlin.math.max
import kotlin.math.min

/**
 * Large images in overlapping, blended tiles: a port of keras_udd/tiling.py
 * (same tile starts, alignment, raised-cosine weights, reflect padding), as
 * mobile_demo/web/js/tiling.js is, so the app, the page and
 * `python -m keras_udd.deblur` cut and blend an image the same way.
 */
object Tiling {
    fun tileStarts(length: Int, tile: Int, overlap: Int): List<Int> {
        if (length <= tile) return listOf(0)
        require(overlap in 0 until tile) { "overlap must be in [0, $tile), got $overlap" }
        val starts = (0 until length - tile step tile - overlap).toMutableList()
        starts.add(length - tile)
        return starts
    }

    fun blendWindow(size: Int, overlap: Int): FloatArray = FloatArray(size) { i ->
        if (overlap <= 0) {
            1f
        } else {
            val ramp = min(min(i + 0.5, size - i - 0.5) / overlap, 1.0)
            (0.5 - 0.5 * cos(PI * ramp)).toFloat()
        }
    }

    fun aligned(tileSize: Int, overlap: Int, align: Int): Pair<Int, Int> {
        val t = max(tileSize / align, 1) * align
        return t to min((overlap + align - 1) / align * align, t - align)
    }

    private fun padding(length: Int, align: Int) = (align - length % align) % align

    /** (y, x, h, w) of the tiles covering an image, row by row. */
    fun tiles(height: Int, width: Int, tileSize: Int, overlap: Int, align: Int = 1): List<IntArray> {
        if (height <= tileSize && width <= tileSize) return listOf(intArrayOf(0, 0, height, width))
        val h = height + padding(height, align)
        val w = width + padding(width, align)
        val (t, o) = aligned(tileSize, overlap, align)
        val th = min(t, h)
        val tw = min(t, w)
        return tileStarts(h, th, o).flatMap { y -> tileStarts(w, tw, o).map { x -> intArrayOf(y, x, th, tw) } }
    }

    private fun padIndex(i: Int, n: Int, mode: String): Int {
        if (n == 1) return 0
        return when (mode) {
            "edge" -> min(i, n - 1)
            "reflect" -> (i % (2 * (n - 1))).let { if (it < n) it else 2 * (n - 1) - it }
            else -> (i % (2 * n)).let { if (it < n) it else 2 * n - 1 - it } // symmetric
        }
    }

    /** The image padded at the bottom/right (numpy's reflect/symmetric/edge). */
    fun pad(image: Image, height: Int, width: Int, mode: String): Image {
        if (height == image.height && width == image.width) return image
        val data = FloatArray(height * width * 3)
        for (y in 0 until height) {
            val sy = padIndex(y, image.height, mode)
            for (x in 0 until width) {
                val sx = padIndex(x, image.width, mode)
                System.arraycopy(image.data, (sy * image.width + sx) * 3, data, (y * width + x) * 3, 3)
            }
        }
        return Image(data, height, width)
    }

    fun crop(image: Image, y: Int, x: Int, h: Int, w: Int): Image {
        val data = FloatArray(h * w * 3)
        for (r in 0 until h) {
            System.arraycopy(image.data, ((y + r) * image.width + x) * 3, data, r * w * 3, w * 3)
        }
        return Image(data, h, w)
    }

    /** `fn` applied in tiles, as keras_udd.tiling.process_tiled(batch_size=1). */
    fun processTiled(
        image: Image,
        tileSize: Int,
        overlap: Int,
        align: Int,
        progress: ((Int, Int) -> Unit)? = null,
        fn: (Image) -> Image,
    ): Image {
        require(overlap in 0 until tileSize) { "overlap must be in [0, tileSize)" }
        val height = image.height
        val width = image.width
        if (height <= tileSize && width <= tileSize) {
            return fn(image).also { progress?.invoke(1, 1) }
        }
        val boxes = tiles(height, width, tileSize, overlap, align)
        val (_, o) = aligned(tileSize, overlap, align)
        val mode = if (min(height, width) > align) "reflect" else "symmetric"
        val padded = pad(image, height + padding(height, align), width + padding(width, align), mode)
        val th = boxes[0][2]
        val tw = boxes[0][3]
        val wy = blendWindow(th, o)
        val wx = blendWindow(tw, o)
        val total = FloatArray(padded.height * padded.width * 3)
        val weightSum = FloatArray(padded.height * padded.width)
        boxes.forEachIndexed { i, (y0, x0, h, w) ->
            val out = fn(crop(padded, y0, x0, h, w))
            for (y in 0 until h) {
                for (x in 0 until w) {
                    val weight = wy[y] * wx[x]
                    val at = (y0 + y) * padded.width + x0 + x
                    weightSum[at] += weight
                    for (k in 0 until 3) total[at * 3 + k] += out.data[(y * w + x) * 3 + k] * weight
                }
            }
            progress?.invoke(i + 1, boxes.size)
        }
        val data = FloatArray(height * width * 3)
        for (y in 0 until height) {
            for (x in 0 until width) {
                val at = y * padded.width + x
                for (k in 0 until 3) data[(y * width + x) * 3 + k] = total[at * 3 + k] / weightSum[at]
            }
        }
        return Image(data, height, width)
    }
}
