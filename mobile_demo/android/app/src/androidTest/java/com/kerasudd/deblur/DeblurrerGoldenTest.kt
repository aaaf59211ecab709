package com.kerasudd.deblur

import android.graphics.Bitmap
import android.graphics.BitmapFactory
import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import org.json.JSONObject
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import kotlin.math.abs
import kotlin.math.max

/**
 * The app's Deblurrer against the export's SavedModel (TensorFlow): golden
 * images written by `python -m mobile_demo.golden` for the same export,
 * copied into this test's assets by the `copyDeblurGolden` task.
 */
@RunWith(AndroidJUnit4::class)
class DeblurrerGoldenTest {
    private val instrumentation = InstrumentationRegistry.getInstrumentation()
    private val app = instrumentation.targetContext // Holds the model.
    private val test = instrumentation.context // Holds the goldens.
    private val golden = JSONObject(test.assets.open("golden/golden.json").bufferedReader().use { it.readText() })
    private val tolerance = golden.getInt("tolerance")

    private fun image(name: String): Bitmap =
        test.assets.open("golden/$name").use { BitmapFactory.decodeStream(it) }
            .copy(Bitmap.Config.ARGB_8888, false)

    private fun maxDifference(a: Bitmap, b: Bitmap): Int {
        assertEquals(a.width, b.width)
        assertEquals(a.height, b.height)
        val pa = IntArray(a.width * a.height).also { a.getPixels(it, 0, a.width, 0, 0, a.width, a.height) }
        val pb = IntArray(b.width * b.height).also { b.getPixels(it, 0, b.width, 0, 0, b.width, b.height) }
        var worst = 0
        for (i in pa.indices) {
            for (shift in intArrayOf(16, 8, 0)) {
                worst = max(worst, abs(((pa[i] shr shift) and 0xff) - ((pb[i] shr shift) and 0xff)))
            }
        }
        return worst
    }

    @Test
    fun wholeImageMatchesSavedModel() {
        Deblurrer(app, Deblurrer.Options(numThreads = 2)).use { deblurrer ->
            val result = deblurrer.deblur(image(golden.getString("input")))
            val worst = maxDifference(result.bitmap, image(golden.getString("expected")))
            assertTrue("max difference $worst > $tolerance levels", worst <= tolerance)
            assertEquals(1, result.tiles)
        }
    }

    @Test
    fun tilesMatchSavedModel() {
        val options = Deblurrer.Options(
            numThreads = 2,
            tileSize = golden.getInt("tile_size"),
            overlap = golden.getInt("overlap"),
        )
        Deblurrer(app, options).use { deblurrer ->
            val result = deblurrer.deblur(image(golden.getString("input")))
            val worst = maxDifference(result.bitmap, image(golden.getString("expected_tiled")))
            assertTrue("max difference $worst > $tolerance levels", worst <= tolerance)
            assertTrue(result.tiles > 1)
        }
    }

    @Test
    fun oddAndTinySizesComeBackAtTheirSize() {
        val input = image(golden.getString("input"))
        Deblurrer(app, Deblurrer.Options(numThreads = 2)).use { deblurrer ->
            for ((w, h) in listOf(53 to 37, 9 to 7)) {
                val out = deblurrer.deblur(Bitmap.createBitmap(input, 0, 0, w, h)).bitmap
                assertEquals(w, out.width)
                assertEquals(h, out.height)
            }
        }
    }
}
