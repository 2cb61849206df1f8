import java.util.ArrayList;
import java.util.List;

/** Fills the heap with 256 KiB arrays until OutOfMemoryError; prints how far it got. Small enough
 * never to be a G1 humongous object (those take whole regions and would waste half the heap). */
public class HeapFill {
    public static void main(String[] args) {
        System.out.println("max_heap " + Runtime.getRuntime().maxMemory());
        List<long[]> kept = new ArrayList<>();
        long filled = 0;
        while (true) {
            kept.add(new long[32 * 1024]);
            filled += 256 << 10;
            if (filled % (8 << 20) == 0) {
                System.out.println("filled " + filled);
            }
        }
    }
}
