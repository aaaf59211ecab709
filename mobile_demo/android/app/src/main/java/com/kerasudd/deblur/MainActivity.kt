package com.kerasudd.deblur

import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.ImageDecoder
import android.graphics.Matrix
import android.net.Uri
import android.os.Build
import android.os.Bundle
import android.view.View
import android.widget.Button
import android.widget.CheckBox
import android.widget.ProgressBar
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts.PickVisualMedia
import androidx.exifinterface.media.ExifInterface
import androidx.lifecycle.lifecycleScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext

/** Pick a photo with the system photo picker, deblur it on the device, compare. */
class MainActivity : ComponentActivity() {
    private var deblurrer: Deblurrer? = null
    private lateinit var pick: Button
    private lateinit var gpu: CheckBox
    private lateinit var status: TextView
    private lateinit var stats: TextView
    private lateinit var progress: ProgressBar
    private lateinit var compare: CompareView

    private val picker = registerForActivityResult(PickVisualMedia()) { uri ->
        if (uri != null) deblur(uri)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        pick = findViewById(R.id.pick)
        gpu = findViewById(R.id.gpu)
        status = findViewById(R.id.status)
        stats = findViewById(R.id.stats)
        progress = findViewById(R.id.progress)
        compare = findViewById(R.id.compare)
        pick.setOnClickListener {
            picker.launch(PickVisualMediaRequest(PickVisualMedia.ImageOnly))
        }
        gpu.setOnCheckedChangeListener { _, _ -> loadModel() }
        loadModel()
    }

    private fun loadModel() {
        pick.isEnabled = false
        status.setText(R.string.loading)
        val useGpu = gpu.isChecked
        lifecycleScope.launch {
            val loaded = withContext(Dispatchers.Default) {
                deblurrer?.close()
                runCatching {
                    val threads = Runtime.getRuntime().availableProcessors().coerceIn(1, 4)
                    Deblurrer(this@MainActivity, Deblurrer.Options(numThreads = threads, useGpu = useGpu))
                }
            }
            deblurrer = loaded.getOrNull()
            loaded.onSuccess {
                status.text = getString(R.string.ready) + " (${it.backend}, ${it.contract.file})"
                pick.isEnabled = true
            }.onFailure {
                status.text = "Could not load the model: ${it.message}"
            }
        }
    }

    private fun deblur(uri: Uri) {
        val model = deblurrer ?: return
        pick.isEnabled = false
        gpu.isEnabled = false
        status.text = "Deblurring…"
        lifecycleScope.launch {
            val outcome = withContext(Dispatchers.Default) {
                runCatching {
                    val photo = decode(uri)
                    photo to model.deblur(photo) { done, total ->
                        runOnUiThread {
                            progress.visibility = if (total > 1) View.VISIBLE else View.GONE
                            progress.max = total
                            progress.progress = done
                        }
                    }
                }
            }
            progress.visibility = View.GONE
            pick.isEnabled = true
            gpu.isEnabled = true
            outcome.onSuccess { (photo, result) ->
                compare.show(photo, result.bitmap)
                status.text = "Done on ${result.backend}."
                stats.text = "${photo.width} x ${photo.height} px, ${result.tiles} tile(s)\n" +
                    "latency ${result.inferenceMs} ms (model), ${result.totalMs} ms total"
            }.onFailure {
                status.text = "Could not deblur this photo: ${it.message}"
            }
        }
    }

    /** The photo upright (EXIF orientation applied), ARGB_8888, software. */
    private fun decode(uri: Uri): Bitmap {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) {
            val source = ImageDecoder.createSource(contentResolver, uri)
            return ImageDecoder.decodeBitmap(source) { decoder, _, _ ->
                decoder.allocator = ImageDecoder.ALLOCATOR_SOFTWARE
            }.copy(Bitmap.Config.ARGB_8888, false)
        }
        val bitmap = contentResolver.openInputStream(uri).use { BitmapFactory.decodeStream(it) }
            ?: error("not an image this device can read")
        val orientation = contentResolver.openInputStream(uri).use {
            ExifInterface(it!!).rotationDegrees
        }
        if (orientation == 0) return bitmap
        val matrix = Matrix().apply { postRotate(orientation.toFloat()) }
        return Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, matrix, true)
    }

    override fun onDestroy() {
        deblurrer?.close()
        super.onDestroy()
    }
}
