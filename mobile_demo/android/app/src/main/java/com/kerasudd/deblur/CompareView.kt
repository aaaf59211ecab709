package com.kerasudd.deblur

import android.annotation.SuppressLint
import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.graphics.RectF
import android.util.AttributeSet
import android.view.MotionEvent
import android.view.View
import kotlin.math.min

/** Before/after of one photo, split at a position the user drags. */
class CompareView @JvmOverloads constructor(
    context: Context,
    attrs: AttributeSet? = null,
) : View(context, attrs) {
    private var before: Bitmap? = null
    private var after: Bitmap? = null
    private var split = 0.5f
    private val line = Paint().apply {
        color = Color.WHITE
        strokeWidth = 4f
    }
    private val pixels = Paint(Paint.FILTER_BITMAP_FLAG)

    fun show(before: Bitmap?, after: Bitmap?) {
        this.before = before
        this.after = after
        invalidate()
    }

    private fun frame(bitmap: Bitmap): RectF {
        val scale = min(width.toFloat() / bitmap.width, height.toFloat() / bitmap.height)
        val w = bitmap.width * scale
        val h = bitmap.height * scale
        val left = (width - w) / 2
        val top = (height - h) / 2
        return RectF(left, top, left + w, top + h)
    }

    override fun onDraw(canvas: Canvas) {
        val b = before ?: return
        val box = frame(b)
        canvas.drawBitmap(b, null, box, pixels)
        val a = after ?: return
        val x = box.left + split * box.width()
        canvas.save()
        canvas.clipRect(x, box.top, box.right, box.bottom)
        canvas.drawBitmap(a, null, box, pixels)
        canvas.restore()
        canvas.drawLine(x, box.top, x, box.bottom, line)
    }

    @SuppressLint("ClickableViewAccessibility")
    override fun onTouchEvent(event: MotionEvent): Boolean {
        val b = before ?: return false
        val box = frame(b)
        split = ((event.x - box.left) / box.width()).coerceIn(0f, 1f)
        invalidate()
        return true
    }
}
