// A small valid design (GEMM + bias + relu on 2 cores: a join, a distribute, 1:1 links), written
// once by fusebuild and kept as data: the rules tests plant one violation each into this text,
// so they test the checker without the generator.
module {
  aie.device(npu2) {
    func.func private @add_f32_4x16_row32(memref<64xf32>, memref<64xf32>) attributes {link_with = "kernels.o"}
    func.func private @add_f32_4x16_row48(memref<64xf32>, memref<64xf32>) attributes {link_with = "kernels.o"}
    func.func private @matmul_bt_f32_4x8x16(memref<64xf32>, memref<128xf32>, memref<64xf32>) attributes {link_with = "kernels.o"}
    func.func private @relu_f32_4x16(memref<64xf32>) attributes {link_with = "kernels.o"}
    func.func private @zero_f32_4x16(memref<64xf32>) attributes {link_with = "kernels.o"}
    %tile_0_0 = aie.tile(0, 0)
    %tile_1_0 = aie.tile(1, 0)
    %tile_0_1 = aie.tile(0, 1)
    %tile_1_1 = aie.tile(1, 1)
    %tile_0_2 = aie.tile(0, 2)
    %tile_1_2 = aie.tile(1, 2)
    aie.objectfifo @x_L3L2(%tile_0_0, {%tile_0_1}, 2 : i32) : !aie.objectfifo<memref<32xf32>>
    aie.objectfifo @b_L3L2(%tile_0_0, {%tile_0_1}, 2 : i32) : !aie.objectfifo<memref<32xf32>>
    aie.objectfifo @x_L2L1(%tile_0_1, {%tile_0_2, %tile_1_2}, 2 : i32) : !aie.objectfifo<memref<64xf32>>
    aie.objectfifo @w_L3L2(%tile_1_0, {%tile_0_1}, 2 : i32) : !aie.objectfifo<memref<256xf32>>
    aie.objectfifo @w_L2L1(%tile_0_1, {%tile_0_2}, 2 : i32) : !aie.objectfifo<memref<128xf32>>
    aie.objectfifo @w_L2L1_1(%tile_0_1, {%tile_1_2}, 2 : i32) : !aie.objectfifo<memref<128xf32>>
    aie.objectfifo @y_L1L2_0(%tile_0_2, {%tile_0_1}, 2 : i32) : !aie.objectfifo<memref<64xf32>>
    aie.objectfifo @y_L2L3_0(%tile_0_1, {%tile_0_0}, 2 : i32) : !aie.objectfifo<memref<64xf32>>
    aie.objectfifo @y_L1L2_1(%tile_1_2, {%tile_1_1}, 2 : i32) : !aie.objectfifo<memref<64xf32>>
    aie.objectfifo @y_L2L3_1(%tile_1_1, {%tile_1_0}, 2 : i32) : !aie.objectfifo<memref<64xf32>>
    aie.objectfifo.link [@x_L3L2, @b_L3L2] -> [@x_L2L1]([0, 32] [])
    aie.objectfifo.link [@w_L3L2] -> [@w_L2L1, @w_L2L1_1]([] [0, 128])
    aie.objectfifo.link [@y_L1L2_0] -> [@y_L2L3_0]([] [])
    aie.objectfifo.link [@y_L1L2_1] -> [@y_L2L3_1]([] [])
    // core of kernel y
    %core_0_2 = aie.core(%tile_0_2) {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c2 = arith.constant 2 : index
      scf.for %it_0_2 = %c0 to %c2 step %c1 {
        %out_0_2_sv = aie.objectfifo.acquire @y_L1L2_0(Produce, 1) : !aie.objectfifosubview<memref<64xf32>>
        %out_0_2 = aie.objectfifo.subview.access %out_0_2_sv[0] : !aie.objectfifosubview<memref<64xf32>> -> memref<64xf32>
        func.call @zero_f32_4x16(%out_0_2) : (memref<64xf32>) -> ()
        scf.for %kt_0_2 = %c0 to %c1 step %c1 {
          %a_0_2_sv = aie.objectfifo.acquire @x_L2L1(Consume, 1) : !aie.objectfifosubview<memref<64xf32>>
          %a_0_2 = aie.objectfifo.subview.access %a_0_2_sv[0] : !aie.objectfifosubview<memref<64xf32>> -> memref<64xf32>
          %b_0_2_sv = aie.objectfifo.acquire @w_L2L1(Consume, 1) : !aie.objectfifosubview<memref<128xf32>>
          %b_0_2 = aie.objectfifo.subview.access %b_0_2_sv[0] : !aie.objectfifosubview<memref<128xf32>> -> memref<128xf32>
          func.call @matmul_bt_f32_4x8x16(%a_0_2, %b_0_2, %out_0_2) : (memref<64xf32>, memref<128xf32>, memref<64xf32>) -> ()
          aie.objectfifo.release @x_L2L1(Consume, 1)
          aie.objectfifo.release @w_L2L1(Consume, 1)
        }
        %al_0_2_sv = aie.objectfifo.acquire @x_L2L1(Consume, 1) : !aie.objectfifosubview<memref<64xf32>>
        %al_0_2 = aie.objectfifo.subview.access %al_0_2_sv[0] : !aie.objectfifosubview<memref<64xf32>> -> memref<64xf32>
        %bl_0_2_sv = aie.objectfifo.acquire @w_L2L1(Consume, 1) : !aie.objectfifosubview<memref<128xf32>>
        %bl_0_2 = aie.objectfifo.subview.access %bl_0_2_sv[0] : !aie.objectfifosubview<memref<128xf32>> -> memref<128xf32>
        func.call @matmul_bt_f32_4x8x16(%al_0_2, %bl_0_2, %out_0_2) : (memref<64xf32>, memref<128xf32>, memref<64xf32>) -> ()
        aie.objectfifo.release @w_L2L1(Consume, 1)
        func.call @add_f32_4x16_row32(%out_0_2, %al_0_2) : (memref<64xf32>, memref<64xf32>) -> ()
        func.call @relu_f32_4x16(%out_0_2) : (memref<64xf32>) -> ()
        aie.objectfifo.release @x_L2L1(Consume, 1)
        aie.objectfifo.release @y_L1L2_0(Produce, 1)
      }
      aie.end
    } {stack_size = 1024 : i32}
    // core of kernel y
    %core_1_2 = aie.core(%tile_1_2) {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c2 = arith.constant 2 : index
      scf.for %it_1_2 = %c0 to %c2 step %c1 {
        %out_1_2_sv = aie.objectfifo.acquire @y_L1L2_1(Produce, 1) : !aie.objectfifosubview<memref<64xf32>>
        %out_1_2 = aie.objectfifo.subview.access %out_1_2_sv[0] : !aie.objectfifosubview<memref<64xf32>> -> memref<64xf32>
        func.call @zero_f32_4x16(%out_1_2) : (memref<64xf32>) -> ()
        scf.for %kt_1_2 = %c0 to %c1 step %c1 {
          %a_1_2_sv = aie.objectfifo.acquire @x_L2L1(Consume, 1) : !aie.objectfifosubview<memref<64xf32>>
          %a_1_2 = aie.objectfifo.subview.access %a_1_2_sv[0] : !aie.objectfifosubview<memref<64xf32>> -> memref<64xf32>
          %b_1_2_sv = aie.objectfifo.acquire @w_L2L1_1(Consume, 1) : !aie.objectfifosubview<memref<128xf32>>
          %b_1_2 = aie.objectfifo.subview.access %b_1_2_sv[0] : !aie.objectfifosubview<memref<128xf32>> -> memref<128xf32>
          func.call @matmul_bt_f32_4x8x16(%a_1_2, %b_1_2, %out_1_2) : (memref<64xf32>, memref<128xf32>, memref<64xf32>) -> ()
          aie.objectfifo.release @x_L2L1(Consume, 1)
          aie.objectfifo.release @w_L2L1_1(Consume, 1)
        }
        %al_1_2_sv = aie.objectfifo.acquire @x_L2L1(Consume, 1) : !aie.objectfifosubview<memref<64xf32>>
        %al_1_2 = aie.objectfifo.subview.access %al_1_2_sv[0] : !aie.objectfifosubview<memref<64xf32>> -> memref<64xf32>
        %bl_1_2_sv = aie.objectfifo.acquire @w_L2L1_1(Consume, 1) : !aie.objectfifosubview<memref<128xf32>>
        %bl_1_2 = aie.objectfifo.subview.access %bl_1_2_sv[0] : !aie.objectfifosubview<memref<128xf32>> -> memref<128xf32>
        func.call @matmul_bt_f32_4x8x16(%al_1_2, %bl_1_2, %out_1_2) : (memref<64xf32>, memref<128xf32>, memref<64xf32>) -> ()
        aie.objectfifo.release @w_L2L1_1(Consume, 1)
        func.call @add_f32_4x16_row48(%out_1_2, %al_1_2) : (memref<64xf32>, memref<64xf32>) -> ()
        func.call @relu_f32_4x16(%out_1_2) : (memref<64xf32>) -> ()
        aie.objectfifo.release @x_L2L1(Consume, 1)
        aie.objectfifo.release @y_L1L2_1(Produce, 1)
      }
      aie.end
    } {stack_size = 1024 : i32}
    aie.runtime_sequence(%arg0: memref<128xf32>, %arg1: memref<512xf32>, %arg2: memref<32xf32>, %arg3: memref<256xf32>) {
      aiex.npu.dma_memcpy_nd(%arg3[0, 0, 0, 0][1, 1, 4, 16][0, 0, 32, 1]) {id = 0 : i64, metadata = @y_L2L3_0, issue_token = true} : memref<256xf32>
      aiex.npu.dma_memcpy_nd(%arg3[0, 0, 0, 16][1, 1, 4, 16][0, 0, 32, 1]) {id = 0 : i64, metadata = @y_L2L3_1, issue_token = true} : memref<256xf32>
      aiex.npu.dma_memcpy_nd(%arg0[0, 0, 0, 0][1, 2, 4, 8][0, 8, 16, 1]) {id = 1 : i64, metadata = @x_L3L2} : memref<128xf32>
      aiex.npu.dma_memcpy_nd(%arg2[0, 0, 0, 0][2, 1, 1, 32][0, 0, 0, 1]) {id = 2 : i64, metadata = @b_L3L2} : memref<32xf32>
      aiex.npu.dma_memcpy_nd(%arg1[0, 0, 0, 0][1, 2, 32, 8][0, 8, 16, 1]) {id = 1 : i64, metadata = @w_L3L2} : memref<512xf32>
      aiex.npu.dma_wait {symbol = @y_L2L3_0}
      aiex.npu.dma_wait {symbol = @y_L2L3_1}
      aiex.npu.dma_memcpy_nd(%arg3[0, 0, 0, 128][1, 1, 4, 16][0, 0, 32, 1]) {id = 0 : i64, metadata = @y_L2L3_0, issue_token = true} : memref<256xf32>
      aiex.npu.dma_memcpy_nd(%arg3[0, 0, 0, 144][1, 1, 4, 16][0, 0, 32, 1]) {id = 0 : i64, metadata = @y_L2L3_1, issue_token = true} : memref<256xf32>
      aiex.npu.dma_memcpy_nd(%arg0[0, 0, 0, 64][1, 2, 4, 8][0, 8, 16, 1]) {id = 1 : i64, metadata = @x_L3L2} : memref<128xf32>
      aiex.npu.dma_memcpy_nd(%arg2[0, 0, 0, 0][2, 1, 1, 32][0, 0, 0, 1]) {id = 2 : i64, metadata = @b_L3L2} : memref<32xf32>
      aiex.npu.dma_memcpy_nd(%arg1[0, 0, 0, 0][1, 2, 32, 8][0, 8, 16, 1]) {id = 1 : i64, metadata = @w_L3L2} : memref<512xf32>
      aiex.npu.dma_wait {symbol = @y_L2L3_0}
      aiex.npu.dma_wait {symbol = @y_L2L3_1}
    }
  }
}

