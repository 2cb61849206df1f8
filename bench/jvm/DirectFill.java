import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/** Allocates 1 MiB direct buffers, every page written, until OutOfMemoryError. */
public class DirectFill {
    public static void main(String[] args) {
        List<ByteBuffer> kept = new ArrayList<>();
        long filled = 0;
        while (true) {
            ByteBuffer buffer = ByteBuffer.allocateDirect(1 << 20);
            for (int i = 0; i < buffer.capacity(); i += 4096) {
                buffer.put(i, (byte) 1);
            }
            kept.add(buffer);
            filled += 1 << 20;
            if (filled % (8 << 20) == 0) {
                System.out.println("filled " + filled);
            }
        }
    }
}
