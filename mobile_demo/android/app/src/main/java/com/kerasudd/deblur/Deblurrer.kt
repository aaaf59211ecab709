package com.kerasudd.deblur

import android.content.Context
import android.graphics.Bitmap
import android.os.SystemClock
import android.util.Log
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import java.io.Closeable
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import kotlin.math.max

/**
 * All model code of the app: owns the LiteRT [Interpreter] of the exported
 * deblurrer (XNNPACK with [Options.numThreads], or the GPU delegate),
 * resizes its input per image (tile) size, tiles large photos, and maps
 * pixels to and from the model as the JSON contract says.
 *
 * Not thread-safe: call [deblur] from one background thread at a time.
 */
class Deblurrer(context: Context, private val options: Options = Options()) : Closeable {
    data class Options(
        /** The contract in the app's assets; its "file" names the model beside it. */
        val contractAsset: String = BuildConfig.MODEL_CONTRACT,
        val numThreads: Int = 4,
        /** Try the GPU delegate (falls back to XNNPACK where unsupported). */
        val useGpu: Boolean = false,
        /** keras_udd.deblur.deblur_image's defaults; ALIGN is its STRIDE. */
        val tileSize: Int = TILE_SIZE,
        val overlap: Int = TILE_OVERLAP,
    )

    class Result(
        val bitmap: Bitmap,
        /** Model time summed over tiles (resize + run), ms. */
        val inferenceMs: Long,
        val totalMs: Long,
        val tiles: Int,
        val backend: String,
    )

    val contract: Contract
    val backend: String
    private val interpreter: Interpreter
    private var gpuDelegate: GpuDelegate? = null
    private val inputPosition: Int
    private val outputPosition: Int
    private var shape: IntArray? = null

    init {
        val contractText = context.assets.open(options.contractAsset).bufferedReader().use { it.readText() }
        contract = Contract.parse(contractText)
        val folder = options.contractAsset.substringBeforeLast('/', "")
        val model = mapAsset(context, if (folder.isEmpty()) contract.file else "$folder/${contract.file}")
        val interpreterOptions = Interpreter.Options().setNumThreads(options.numThreads).setUseXNNPACK(true)
        var chosen = "XNNPACK, ${options.numThreads} threads"
        if (options.useGpu) {
            val compatibility = CompatibilityList()
            if (compatibility.isDelegateSupportedOnThisDevice) {
                gpuDelegate = GpuDelegate(compatibility.bestOptionsForThisDevice)
                interpreterOptions.addDelegate(gpuDelegate)
                chosen = "GPU delegate"
            } else {
                Log.w(TAG, "GPU delegate not supported on this device; using XNNPACK")
            }
        }
        interpreter = Interpreter(model, interpreterOptions)
        backend = chosen
        check(contract.signatureKey in interpreter.signatureKeys) {
            "the model has no signature ${contract.signatureKey}"
        }
        inputPosition = (0 until interpreter.inputTensorCount).firstOrNull {
            interpreter.getInputTensor(it).name() == contract.input.tensorName
        } ?: error("the model has no input tensor ${contract.input.tensorName}")
        outputPosition = (0 until interpreter.outputTensorCount).firstOrNull {
            interpreter.getOutputTensor(it).name() == contract.output.tensorName
        } ?: error("the model has no output tensor ${contract.output.tensorName}")
    }

    /** Deblurs an image of any size; [progress] gets (tiles done, tiles). */
    fun deblur(bitmap: Bitmap, progress: ((Int, Int) -> Unit)? = null): Result {
        val start = SystemClock.elapsedRealtime()
        val argb = if (bitmap.config == Bitmap.Config.ARGB_8888) bitmap else bitmap.copy(Bitmap.Config.ARGB_8888, false)
        var image = contract.preprocess(argb)
        val height = image.height
        val width = image.width
        // Below the model's minimum: edge-pad, crop back (as deblur_image does).
        image = Tiling.pad(image, max(height, contract.minHeight), max(width, contract.minWidth), "edge")
        var inferenceMs = 0L
        var tiles = 0
        var out = Tiling.processTiled(image, options.tileSize, options.overlap, ALIGN, { done, total ->
            tiles = total
            progress?.invoke(done, total)
        }) { tile ->
            val t0 = SystemClock.elapsedRealtime()
            run(tile).also { inferenceMs += SystemClock.elapsedRealtime() - t0 }
        }
        if (out.height != height || out.width != width) out = Tiling.crop(out, 0, 0, height, width)
        val result = contract.postprocess(out)
        return Result(result, inferenceMs, SystemClock.elapsedRealtime() - start, tiles, backend)
    }

    /** One H x W x 3 image (tile) in the input range through the model. */
    fun run(image: Contract.Image): Contract.Image {
        val dims = intArrayOf(1, image.height, image.width, 3)
        if (!dims.contentEquals(shape)) {
            interpreter.resizeInput(inputPosition, dims)
            interpreter.allocateTensors()
            shape = dims
        }
        val input = ByteBuffer.allocateDirect(image.data.size * 4).order(ByteOrder.nativeOrder())
        input.asFloatBuffer().put(image.data)
        val output = ByteBuffer.allocateDirect(image.data.size * 4).order(ByteOrder.nativeOrder())
        val inputs = arrayOfNulls<Any>(interpreter.inputTensorCount)
        inputs[inputPosition] = input
        interpreter.runForMultipleInputsOutputs(inputs, mapOf(outputPosition to output))
        output.rewind()
        val values = FloatArray(image.data.size)
        output.asFloatBuffer().get(values)
        return Contract.Image(values, image.height, image.width)
    }

    override fun close() {
        interpreter.close()
        gpuDelegate?.close()
    }

    companion object {
        const val TILE_SIZE = 512
        const val TILE_OVERLAP = 64
        const val ALIGN = 4
        private const val TAG = "Deblurrer"

        private fun mapAsset(context: Context, path: String): MappedByteBuffer =
            context.assets.openFd(path).use { fd ->
                FileInputStream(fd.fileDescriptor).channel.use { channel ->
                    channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
                }
            }
    }
}
